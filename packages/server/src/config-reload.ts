import { watch } from "node:fs";
import { basename, dirname } from "node:path";
import type { Logger } from "pino";
import { readSettings, type Settings } from "./config.ts";

/** Settings that apply while running; the others need a restart. */
const safe = ["log", "rateLimits", "tracing", "ipAccess"] as const;

export interface WatchConfigOptions {
  /** The YAML file to watch. */
  file: string;
  /** The settings in force. */
  current: Settings;
  /**
   * Applies a valid new configuration's safe settings (log level, rate limits, sampling ratio, IP
   * allow and deny lists).
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
    const restartNeeded = (Object.keys(next) as (keyof Settings)[]).filter(
      (key) =>
        !(safe as readonly string[]).includes(key) &&
        JSON.stringify(next[key]) !== JSON.stringify(current[key]),
    );
    if (restartNeeded.length > 0) {
      options.logger.warn(
        { settings: restartNeeded },
        "changed settings apply only after a restart",
      );
    }
    const changed = safe.filter(
      (key) => JSON.stringify(next[key]) !== JSON.stringify(current[key]),
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
