import { trace } from "@opentelemetry/api";
import { type Logger, pino } from "pino";
import { createPrettyDestination, type LogFormatSetting, resolveLogFormat } from "./log-format.ts";

export interface ProcessLoggerOptions {
  /** pino's level name. */
  level: string;
  /** "json", "pretty", or "auto": readable when standard output is a terminal. */
  format: LogFormatSetting;
  /** Fields on every line (service, worker or role). */
  base: Record<string, unknown>;
  /**
   * Write JSON lines at once rather than in batches (a process that may exit without flushing).
   * Default false.
   */
  sync?: boolean;
  /** Standard output, or what stands for it in a test. Default: process.stdout. */
  stdout?: { write(text: string): unknown; isTTY?: boolean };
}

/**
 * The server process's logger, on standard output: JSON lines written asynchronously, off the
 * request path, or readable lines (coloured unless NO_COLOR is set) for a terminal. Lines carry
 * the active trace's ids, and never an authorization header, password or token.
 */
export function createProcessLogger(options: ProcessLoggerOptions): {
  logger: Logger;
  format: "json" | "pretty";
} {
  const stdout = options.stdout ?? process.stdout;
  const format = resolveLogFormat(options.format, stdout.isTTY === true);
  const color = format === "pretty" && stdout.isTTY === true && !process.env.NO_COLOR;
  const logger = pino(
    {
      level: options.level,
      base: options.base,
      redact: ["*.authorization", "*.password", "*.token"],
      mixin() {
        const span = trace.getActiveSpan()?.spanContext();
        return span === undefined ? {} : { trace_id: span.traceId, span_id: span.spanId };
      },
    },
    format === "pretty"
      ? createPrettyDestination(stdout, color)
      : options.stdout === undefined
        ? pino.destination({ sync: options.sync ?? false })
        : { write: (line: string) => void stdout.write(line) },
  );
  return { logger, format };
}
