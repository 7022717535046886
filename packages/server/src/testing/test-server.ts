import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RateLimits } from "@keel/interceptors";
import { openSqliteStore, type Store } from "@keel/store";
import { SignJWT } from "jose";
import { pino } from "pino";
import { type RunningServer, type ServerOptions, startServer } from "../server.ts";

export const testSecret = new TextEncoder().encode("test-secret-test-secret-test-secret!");
/** The API key secret of test servers. */
export const testApiKeySecret = new TextEncoder().encode("test-api-key-secret-test-api-key-secret");

/** An access token signed like the server's own, for any subject and roles. */
export function mintToken(
  subject: string | bigint,
  roles: string[] = [],
  ttlSeconds = 600,
  secret: Uint8Array = testSecret,
): Promise<string> {
  return new SignJWT({ typ: "access", roles })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuer("keel")
    .setAudience("keel")
    .setSubject(String(subject))
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(secret);
}

// Tests make many quick calls as one caller; only the rate-limit tests ask for real limits.
const roomyLimits: RateLimits = { default: { ratePerSecond: 100_000, burst: 100_000 } };

export interface TestServer extends RunningServer {
  /** A token with the admin role. */
  adminToken: string;
  stop(): Promise<void>;
}

/** A real server on a free port with a fresh SQLite file; `stop()` removes everything. */
export async function startTestServer(
  options: Partial<
    Pick<
      ServerOptions,
      | "userServiceUrl"
      | "userServiceTls"
      | "rateLimits"
      | "auditLog"
      | "tls"
      | "healthCheckIntervalMs"
      | "defaultTimeoutMs"
      | "passwordHashing"
      | "accountStatusMaxAgeMs"
      | "clientAddress"
      | "logger"
      | "streamLimits"
      | "refusalSummaryIntervalMs"
      | "engine"
      | "loadReports"
      | "loadShedding"
      | "requestBodies"
    >
  > & {
    /** Wraps the store, for example to make it fail on purpose. */
    wrapStore?: (store: Store) => Store;
    /** Serve from this store (for example PostgreSQL) instead of a fresh SQLite file. */
    store?: Store;
  } = {},
): Promise<TestServer> {
  const { wrapStore = (store: Store) => store, store, ...rest } = options;
  const dir = mkdtempSync(join(tmpdir(), "keel-server-"));
  const server = await startServer({
    host: "127.0.0.1",
    port: 0,
    adminPort: 0,
    store: wrapStore(store ?? openSqliteStore({ path: join(dir, "keel.db") })),
    tokens: { secret: testSecret },
    apiKeySecret: testApiKeySecret,
    // The lowest cost the configuration allows: tests hash many passwords.
    passwordCost: 10,
    rateLimits: roomyLimits,
    logger: pino({ level: process.env.KEEL_TEST_LOG_LEVEL ?? "silent" }),
    ...rest,
  });
  return Object.assign(server, {
    adminToken: await mintToken("admin", ["admin"], 3600),
    async stop() {
      await server.close({ graceMs: 1000 });
      rmSync(dir, { recursive: true, force: true });
    },
  });
}
