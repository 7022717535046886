import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { z } from "zod";

/** Everything the server process is configured with, validated. */
export interface ServerConfig {
  host: string;
  port: number;
  /** Where the embedded database and generated development secrets live. */
  dataDir: string;
  /** Where state lives: the embedded SQLite file, or PostgreSQL when a URL is configured. */
  database:
    | { kind: "sqlite"; path: string }
    | { kind: "postgres"; url: string; schema: string; poolSize: number };
  /** Where OrderService finds UserService; undefined means this process. */
  userServiceUrl: string | undefined;
  jwt: {
    secret: Uint8Array;
    /** True when no secret was configured and a development one was generated into dataDir. */
    generated: boolean;
    issuer: string;
    audience: string;
    accessTtlSeconds: number;
    refreshTtlSeconds: number;
  };
  /** Extra public keys for RS256/ES256 access tokens: a JWKS file's path or a URL. */
  jwks: { file: string } | { url: URL } | undefined;
  rateLimits: {
    ratePerSecond: number;
    burst: number;
    loginPerMinute: number;
    loginBurst: number;
  };
  defaultTimeoutMs: number;
  /** Where the audit log goes: a file, or standard output ("-"). */
  auditLog: { path: string } | "stdout";
  passwordCost: number;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  shutdownGraceMs: number;
}

const port = z.coerce.number().int().min(0).max(65535);
const seconds = z.coerce.number().int().positive();
const schema = z
  .object({
    KEEL_HOST: z.string().min(1).default("0.0.0.0"),
    KEEL_PORT: port.default(9090),
    KEEL_DATA_DIR: z.string().min(1).default("data"),
    KEEL_SQLITE_PATH: z.string().min(1).optional(),
    KEEL_DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL")
      .optional(),
    KEEL_DATABASE_SCHEMA: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be lower-case letters, digits and _")
      .default("public"),
    KEEL_DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(1000).default(10),
    KEEL_USER_SERVICE_URL: z.url({ protocol: /^https?$/ }).optional(),
    KEEL_JWT_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
    KEEL_JWT_ISSUER: z.string().min(1).default("keel"),
    KEEL_JWT_AUDIENCE: z.string().min(1).default("keel"),
    KEEL_ACCESS_TOKEN_TTL_SECONDS: seconds.default(900),
    KEEL_REFRESH_TOKEN_TTL_SECONDS: seconds.default(30 * 24 * 3600),
    KEEL_JWKS_FILE: z.string().min(1).optional(),
    KEEL_JWKS_URL: z.url({ protocol: /^https?$/ }).optional(),
    KEEL_RATE_LIMIT_RPS: z.coerce.number().positive().default(100),
    KEEL_RATE_LIMIT_BURST: z.coerce.number().int().min(1).default(200),
    KEEL_LOGIN_RATE_LIMIT_PER_MINUTE: z.coerce.number().positive().default(10),
    KEEL_LOGIN_RATE_LIMIT_BURST: z.coerce.number().int().min(1).default(5),
    KEEL_DEFAULT_TIMEOUT_MS: z.coerce.number().int().min(0).default(30_000),
    KEEL_AUDIT_LOG: z.string().min(1).optional(),
    KEEL_PASSWORD_COST: z.coerce.number().int().min(10).max(20).default(15),
    KEEL_LOG_LEVEL: z
      .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
      .default("info"),
    KEEL_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
  })
  .strict();

/** The names this process reads; any other `KEEL_*` variable is a mistake worth reporting. */
export const configKeys = Object.keys(schema.shape);

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/**
 * Reads the configuration from `KEEL_*` environment variables. Problems are reported together,
 * each naming its variable. Without KEEL_JWT_SECRET a development secret is generated once into
 * the data directory; with NODE_ENV=production the secret is required.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const keel = Object.fromEntries(Object.entries(env).filter(([key]) => key.startsWith("KEEL_")));
  const parsed = schema.safeParse(keel);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) =>
      issue.code === "unrecognized_keys"
        ? `unknown setting ${issue.keys.join(", ")}; known: ${configKeys.join(", ")}`
        : `${issue.path.join(".")}: ${issue.message}`,
    );
    throw new ConfigError(`invalid configuration: ${problems.join("; ")}`);
  }
  const c = parsed.data;
  const dataDir = resolve(c.KEEL_DATA_DIR);
  if (c.KEEL_JWT_SECRET === undefined && env.NODE_ENV === "production") {
    throw new ConfigError(
      "invalid configuration: KEEL_JWT_SECRET: required when NODE_ENV=production",
    );
  }
  const secret =
    c.KEEL_JWT_SECRET === undefined
      ? developmentSecret(dataDir)
      : new TextEncoder().encode(c.KEEL_JWT_SECRET);
  return {
    host: c.KEEL_HOST,
    port: c.KEEL_PORT,
    dataDir,
    database:
      c.KEEL_DATABASE_URL === undefined
        ? { kind: "sqlite", path: resolve(c.KEEL_SQLITE_PATH ?? join(dataDir, "keel.db")) }
        : {
            kind: "postgres",
            url: c.KEEL_DATABASE_URL,
            schema: c.KEEL_DATABASE_SCHEMA,
            poolSize: c.KEEL_DATABASE_POOL_SIZE,
          },
    userServiceUrl: c.KEEL_USER_SERVICE_URL,
    jwt: {
      secret,
      generated: c.KEEL_JWT_SECRET === undefined,
      issuer: c.KEEL_JWT_ISSUER,
      audience: c.KEEL_JWT_AUDIENCE,
      accessTtlSeconds: c.KEEL_ACCESS_TOKEN_TTL_SECONDS,
      refreshTtlSeconds: c.KEEL_REFRESH_TOKEN_TTL_SECONDS,
    },
    jwks:
      c.KEEL_JWKS_FILE !== undefined
        ? { file: resolve(c.KEEL_JWKS_FILE) }
        : c.KEEL_JWKS_URL !== undefined
          ? { url: new URL(c.KEEL_JWKS_URL) }
          : undefined,
    rateLimits: {
      ratePerSecond: c.KEEL_RATE_LIMIT_RPS,
      burst: c.KEEL_RATE_LIMIT_BURST,
      loginPerMinute: c.KEEL_LOGIN_RATE_LIMIT_PER_MINUTE,
      loginBurst: c.KEEL_LOGIN_RATE_LIMIT_BURST,
    },
    defaultTimeoutMs: c.KEEL_DEFAULT_TIMEOUT_MS,
    auditLog:
      c.KEEL_AUDIT_LOG === "-"
        ? "stdout"
        : { path: resolve(c.KEEL_AUDIT_LOG ?? join(dataDir, "audit.log")) },
    passwordCost: c.KEEL_PASSWORD_COST,
    logLevel: c.KEEL_LOG_LEVEL,
    shutdownGraceMs: c.KEEL_SHUTDOWN_GRACE_MS,
  };
}

/** A random secret kept in the data directory, so that tokens survive restarts in development. */
function developmentSecret(dataDir: string): Uint8Array {
  const path = join(dataDir, "jwt-secret");
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32);
  // `wx`: never overwrite a secret another process wrote a moment ago.
  try {
    writeFileSync(path, secret, { mode: 0o600, flag: "wx" });
    return new Uint8Array(secret);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return new Uint8Array(readFileSync(path));
  }
}
