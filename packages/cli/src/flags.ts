import { readFileSync } from "node:fs";
import { type ParseArgsOptionsConfig, parseArgs } from "node:util";
import type { Protocol, TlsOptions } from "@keel/clients";
import { serverOutput } from "./server-bin.ts";
import { UsageError } from "./usage-error.ts";

/** An example of `--url`, for messages. */
const exampleUrl = "http://127.0.0.1:9090";

const protocols: readonly Protocol[] = ["grpc", "grpc-web", "connect"];

/** `--help`/`-h`, which every command takes. */
export const helpFlag = { help: { type: "boolean", short: "h" } } as const;

/** The flags of every command that calls a server. */
export const connectionFlags = {
  url: { type: "string" },
  protocol: { type: "string", default: "grpc" },
  token: { type: "string" },
  ca: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
} as const;

/** The help text of `connectionFlags`, for the commands' usage. */
export const connectionHelp = `connection flags:
  --url URL           the server's address (default: the server configured here, read like the
                      server reads it: KEEL_HOST, KEEL_PORT, KEEL_TLS_CERT or KEEL_CONFIG's keys;
                      http://127.0.0.1:9090 when nothing is set)
  --protocol NAME     grpc (default), grpc-web or connect
  --token TOKEN       access token sent as "authorization: Bearer TOKEN"
  --ca FILE           PEM CAs that signed the server's certificate, for an https:// server that
                      Node does not trust (default: $KEEL_TLS_CA)
  --cert FILE         PEM client certificate, for a server that asks for one (mutual TLS)
                      (default: $KEEL_TLS_CLIENT_CERT)
  --key FILE          the private key of --cert (default: $KEEL_TLS_CLIENT_KEY)`;

/**
 * Parses a command's flags strictly (no positionals, no unknown flags). A mistake becomes a
 * UsageError that names the flag.
 */
export function parseFlags<T extends ParseArgsOptionsConfig>(args: string[], options: T) {
  return parseArguments(args, options, 0).values;
}

/**
 * Parses a command's flags strictly, and up to `max` arguments that are not flags (a symbol to
 * describe). A mistake, or one argument too many, becomes a UsageError that names it.
 */
export function parseArguments<T extends ParseArgsOptionsConfig>(
  args: string[],
  options: T,
  max: number,
) {
  let parsed: ReturnType<
    typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: true }>
  >;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: max > 0 });
  } catch (err) {
    throw new UsageError(describeParseError(err));
  }
  const extra = parsed.positionals[max];
  if (extra !== undefined) {
    throw new UsageError(`unexpected argument ${JSON.stringify(extra)}: at most ${max} allowed`);
  }
  return parsed;
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
  /** CA and client certificate, when given (by flag or KEEL_TLS_* variable). */
  tls: TlsOptions | undefined;
}

/** The values of `connectionFlags`, as parsed. */
export interface ConnectionValues {
  url?: string | undefined;
  protocol?: string | undefined;
  token?: string | undefined;
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
}

/**
 * Validates the values of `connectionFlags`, reads the TLS files and, without `--url`, asks the
 * server's own executable where the server configured here listens (`keel-server connection`),
 * so that the CLI and the server read the same settings.
 */
export async function connectionOf(
  values: ConnectionValues,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Connection> {
  const protocol = values.protocol ?? "grpc";
  if (!protocols.includes(protocol as Protocol)) {
    throw new UsageError(
      `--protocol must be one of ${protocols.join(", ")}, not ${JSON.stringify(protocol)}`,
    );
  }
  const tls = tlsOf(values, env);
  const url = values.url ?? (JSON.parse(await serverOutput(["connection"])) as { url: string }).url;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--url ${JSON.stringify(url)} is not a URL, for example ${exampleUrl}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new UsageError(`--url must be an http:// or https:// URL, not ${JSON.stringify(url)}`);
  }
  return {
    baseUrl: url.replace(/\/+$/, ""),
    protocol: protocol as Protocol,
    token: values.token,
    tls,
  };
}

/** `--ca`, `--cert` and `--key` (or their KEEL_TLS_* variables), read. */
function tlsOf(values: ConnectionValues, env: NodeJS.ProcessEnv): TlsOptions | undefined {
  const given = (flag: "ca" | "cert" | "key", variable: string) => {
    const path = values[flag] ?? (env[variable] || undefined);
    if (path === undefined) return undefined;
    const source = values[flag] === undefined ? variable : `--${flag}`;
    try {
      return { path, pem: readFileSync(path) };
    } catch (err) {
      throw new UsageError(
        `${source} ${JSON.stringify(path)}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
  };
  const ca = given("ca", "KEEL_TLS_CA");
  const cert = given("cert", "KEEL_TLS_CLIENT_CERT");
  const key = given("key", "KEEL_TLS_CLIENT_KEY");
  if ((cert === undefined) !== (key === undefined)) {
    throw new UsageError("give a client certificate and its key together: --cert and --key");
  }
  if (ca === undefined && cert === undefined) return undefined;
  return {
    ...(ca === undefined ? {} : { ca: ca.pem }),
    ...(cert === undefined ? {} : { cert: cert.pem }),
    ...(key === undefined ? {} : { key: key.pem }),
  };
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

const durationUnits: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * A duration in milliseconds from flag `name`: a number with a unit (`500ms`, `5s`, `2m`, `1h`,
 * `90d`) or a bare number of seconds; its default when the flag is absent.
 */
export function durationFlag(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value);
  const ms = match === null ? Number.NaN : Number(match[1]) * (durationUnits[match[2] ?? "s"] ?? 0);
  if (!(ms > 0) || !Number.isFinite(ms)) {
    throw new UsageError(
      `--${name} must be a positive duration such as 500ms, 5s or 2m, not ${JSON.stringify(value)}`,
    );
  }
  return ms;
}
