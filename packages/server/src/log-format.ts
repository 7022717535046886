import { styleText } from "node:util";

/** How log lines are written: pino's JSON lines, or one readable line each for people. */
export type LogFormat = "json" | "pretty";

/** The `log.format` setting: a format, or "auto" (readable on a terminal, JSON otherwise). */
export type LogFormatSetting = LogFormat | "auto";

/**
 * The format to write in: the setting when it names one; for "auto", readable lines when standard
 * output is a terminal (someone is watching) and JSON otherwise (a file, a pipe, a container's log
 * collector, which parse it).
 */
export function resolveLogFormat(setting: LogFormatSetting, isTTY: boolean): LogFormat {
  if (setting !== "auto") return setting;
  return isTTY ? "pretty" : "json";
}

const levelNames: Record<number, string> = {
  10: "TRACE",
  20: "DEBUG",
  30: "INFO",
  40: "WARN",
  50: "ERROR",
  60: "FATAL",
};
const levelColors: Record<number, Parameters<typeof styleText>[0]> = {
  10: "gray",
  20: "gray",
  30: "green",
  40: "yellow",
  50: "red",
  60: ["bgRed", "white"],
};

// pino's own fields, said by the line's layout, and the fields every line of a process shares.
const hidden = new Set(["level", "time", "msg", "pid", "hostname", "service"]);

/** A field's value as it reads best: strings bare unless they hold spaces, the rest as JSON. */
function valueText(value: unknown): string {
  if (typeof value === "string") return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value);
}

/** `12:03:04.123` in local time. */
function clock(time: unknown): string {
  const date = typeof time === "number" ? new Date(time) : new Date();
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

/**
 * One pino JSON line as a line for people: `12:03:04.123 INFO  message  key=value …`, an error's
 * stack on the lines after it. Colours only when `color`. A line that is not JSON is left as it is.
 */
export function formatLogLine(line: string, color: boolean): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith("\n") ? line : `${line}\n`;
  }
  const paint = (style: Parameters<typeof styleText>[0], text: string) =>
    color ? styleText(style, text, { validateStream: false }) : text;
  const level = typeof entry.level === "number" ? entry.level : 30;
  const name = (levelNames[level] ?? String(level)).padEnd(5);
  const fields: string[] = [];
  let stack = "";
  for (const [key, value] of Object.entries(entry)) {
    if (hidden.has(key) || value === undefined) continue;
    if (key === "err" && typeof value === "object" && value !== null) {
      const err = value as { message?: unknown; stack?: unknown };
      fields.push(`${paint("dim", "err=")}${valueText(err.message)}`);
      if (typeof err.stack === "string") stack = `\n    ${err.stack.split("\n").join("\n    ")}`;
      continue;
    }
    fields.push(`${paint("dim", `${key}=`)}${valueText(value)}`);
  }
  const message = typeof entry.msg === "string" ? entry.msg : "";
  const rest = fields.length === 0 ? "" : `  ${fields.join(" ")}`;
  return `${paint("dim", clock(entry.time))} ${paint(levelColors[level] ?? "white", name)} ${message}${rest}${stack}\n`;
}

/**
 * A pino destination that writes each line for people to `out` (a terminal): pino hands a
 * destination one JSON line per `write`.
 */
export function createPrettyDestination(
  out: { write(text: string): unknown },
  color: boolean,
): { write(line: string): void } {
  return { write: (line) => void out.write(formatLogLine(line, color)) };
}
