import { type ParseArgsOptionsConfig, parseArgs } from "node:util";
import type { Protocol } from "@keel/clients";
import { UsageError } from "./usage-error.ts";

/** Where the commands that call a server look for it when `--url` is not given. */
export const defaultUrl = "http://127.0.0.1:9090";

const protocols: readonly Protocol[] = ["grpc", "grpc-web", "connect"];

/** `--help`/`-h`, which every command takes. */
export const helpFlag = { help: { type: "boolean", short: "h" } } as const;

/** The flags of every command that calls a server. */
export const connectionFlags = {
  url: { type: "string", default: defaultUrl },
  protocol: { type: "string", default: "grpc" },
  token: { type: "string" },
} as const;

/** The help text of `connectionFlags`, for the commands' usage. */
export const connectionHelp = `connection flags:
  --url URL           the server's address (default ${defaultUrl})
  --protocol NAME     grpc (default), grpc-web or connect
  --token TOKEN       access token sent as "authorization: Bearer TOKEN"`;

/**
 * Parses a command's flags strictly (no positionals, no unknown flags). A mistake becomes a
 * UsageError that names the flag.
 */
export function parseFlags<T extends ParseArgsOptionsConfig>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError(describeParseError(err));
  }
}

function describeParseError(err: unknown): string {
  const { code, message } = err as { code?: string; message: string };
  const quoted = /'([^']+)'/.exec(message)?.[1];
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown flag ${quoted ?? message}`;
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `unexpected argument ${JSON.stringify(quoted ?? message)}: this command takes only flags`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      // "Option '--url <value>' argument missing" or "Option '--help' does not take an argument".
      return message.replace(/^Option '([^' ]+)[^']*'/, "flag $1");
    default:
      return message;
  }
}

/** The server a command calls, validated. */
export interface Connection {
  baseUrl: string;
  protocol: Protocol;
  token: string | undefined;
}

/** Validates the values of `connectionFlags`. */
export function connectionOf(values: {
  url?: string | undefined;
  protocol?: string | undefined;
  token?: string | undefined;
}): Connection {
  const url = values.url ?? defaultUrl;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--url ${JSON.stringify(url)} is not a URL, for example ${defaultUrl}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new UsageError(`--url must be an http:// or https:// URL, not ${JSON.stringify(url)}`);
  }
  const protocol = values.protocol ?? "grpc";
  if (!protocols.includes(protocol as Protocol)) {
    throw new UsageError(
      `--protocol must be one of ${protocols.join(", ")}, not ${JSON.stringify(protocol)}`,
    );
  }
  return { baseUrl: url.replace(/\/+$/, ""), protocol: protocol as Protocol, token: values.token };
}

/** A whole number ≥ `min` from flag `name`, or its default when the flag is absent. */
export function integerFlag(
  name: string,
  value: string | undefined,
  fallback: number,
  min = 1,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`--${name} must be a whole number ≥ ${min}, not ${JSON.stringify(value)}`);
  }
  return n;
}

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A duration in milliseconds from flag `name`: a number with a unit (`500ms`, `5s`, `2m`, `1h`) or
 * a bare number of seconds; its default when the flag is absent.
 */
export function durationFlag(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value);
  const ms = match === null ? Number.NaN : Number(match[1]) * (durationUnits[match[2] ?? "s"] ?? 0);
  if (!(ms > 0) || !Number.isFinite(ms)) {
    throw new UsageError(
      `--${name} must be a positive duration such as 500ms, 5s or 2m, not ${JSON.stringify(value)}`,
    );
  }
  return ms;
}
