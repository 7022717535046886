import { watch } from "node:fs";
import { basename, dirname } from "node:path";
import type { Logger } from "pino";
import { readSettings, type Settings } from "./config.ts";

/** Settings that apply while running, by dotted key; the others need a restart. */
const safe = [
  "log",
  "rateLimits",
  "tracing",
  "ipAccess",
  "auth.jwtSecret",
  "auth.acceptedJwtSecrets",
] as const;

/** Keys among the safe settings' that still need a restart: the log's destination is made once. */
const restartOnly = ["log.format"];

/** Whether a change of the setting at `key` (dotted: "rateLimits.burst") applies without a restart. */
export function appliesLive(key: string): boolean {
  return (
    !restartOnly.includes(key) && safe.some((path) => key === path || key.startsWith(`${path}.`))
  );
}

export interface WatchConfigOptions {
  /** The YAML file to watch. */
  file: string;
  /** The settings in force. */
  current: Settings;
  /**
   * Applies a valid new configuration's safe settings (log level, rate limits, sampling ratio,
   * the JWT signing keys, IP allow and deny lists).
   */
  apply: (next: Settings) => void;
  logger: Pick<Logger, "info" | "warn" | "error">;
  /** Environment overrides, as at start. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Reloads the configuration file when it changes. A valid file has its safe settings applied
 * (and changes to others logged as needing a restart); an invalid one is logged with its problems
 * and the running configuration stays. The directory is watched, so editors that replace the file
 * are noticed too.
 */
export function watchConfig(options: WatchConfigOptions): { close(): void } {
  let current = options.current;
  let timer: NodeJS.Timeout | undefined;
  const name = basename(options.file);
  const reload = () => {
    let next: Settings;
    try {
      next = readSettings({ ...(options.env ?? process.env), KEEL_CONFIG: options.file }).settings;
    } catch (err) {
      options.logger.error(
        { problem: (err as Error).message },
        "configuration reload rejected; the running configuration stays",
      );
      return;
    }
    const restartNeeded: string[] = (Object.keys(next) as (keyof Settings)[]).filter(
      (key) => JSON.stringify(unsafePart(next, key)) !== JSON.stringify(unsafePart(current, key)),
    );
    for (const key of restartOnly) {
      const [group, name] = key.split(".") as [keyof Settings, string];
      const read = (settings: Settings) => (settings[group] as Record<string, unknown>)[name];
      if (read(next) !== read(current)) restartNeeded.push(key);
    }
    if (restartNeeded.length > 0) {
      options.logger.warn(
        { settings: restartNeeded },
        "changed settings apply only after a restart",
      );
    }
    const changed = safe.filter(
      (key) => JSON.stringify(valueAt(next, key)) !== JSON.stringify(valueAt(current, key)),
    );
    if (changed.length === 0) return;
    options.apply(next);
    current = next;
    options.logger.info({ settings: changed }, "configuration reloaded");
  };
  const watcher = watch(dirname(options.file), (_event, filename) => {
    if (filename !== null && filename !== name) return;
    // Editors write in several steps: reload once things settle.
    clearTimeout(timer);
    timer = setTimeout(reload, 200);
  });
  watcher.unref();
  return {
    close() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}

function valueAt(settings: Settings, dotted: string): unknown {
  let value: unknown = settings;
  for (const part of dotted.split(".")) value = (value as Record<string, unknown>)?.[part];
  return value;
}

/** The top-level setting `key` without the parts of it that apply while running. */
function unsafePart(settings: Settings, key: keyof Settings): unknown {
  if ((safe as readonly string[]).includes(key)) return undefined;
  const nested = safe.filter((path) => path.startsWith(`${key}.`));
  if (nested.length === 0) return settings[key];
  const rest: Record<string, unknown> = { ...(settings[key] as Record<string, unknown>) };
  for (const path of nested) delete rest[path.slice(key.length + 1)];
  return rest;
}
