import { readFile } from "node:fs/promises";
import { createAuditLog } from "@keel/interceptors";
import { openPostgresStore, openSqliteStore, type Store } from "@keel/store";
import type { JSONWebKeySet } from "jose";
import { type Logger, pino } from "pino";
import type { ServerConfig } from "./config.ts";
import { startServer } from "./server.ts";

/**
 * The server process: the store the configuration names, the audit log, every interceptor, and a
 * clean stop on SIGTERM or SIGINT (calls in flight finish, streams end, the audit log is flushed).
 */
export async function serve(config: ServerConfig): Promise<void> {
  // Log lines are written asynchronously, off the request path, and flushed on exit.
  const logger = pino(
    {
      level: config.logLevel,
      base: { service: "keel" },
      redact: ["*.authorization", "*.password", "*.token"],
    },
    pino.destination({ sync: false }),
  );
  if (config.jwt.generated) {
    logger.warn(
      { dataDir: config.dataDir },
      "KEEL_JWT_SECRET is not set: signing tokens with a development secret kept in the data directory",
    );
  }
  const store = await openStore(config, logger);
  const auditLog = createAuditLog({
    ...(config.auditLog === "stdout"
      ? { destination: process.stdout }
      : { path: config.auditLog.path }),
    onDrop: (dropped) => logger.warn({ dropped }, "audit log queue full: entries were dropped"),
    onError: (err) => logger.error({ err }, "audit log write failed"),
  });
  const server = await startServer({
    host: config.host,
    port: config.port,
    store,
    tokens: {
      secret: config.jwt.secret,
      issuer: config.jwt.issuer,
      audience: config.jwt.audience,
      accessTtlSeconds: config.jwt.accessTtlSeconds,
      refreshTtlSeconds: config.jwt.refreshTtlSeconds,
      ...(config.jwks === undefined ? {} : { jwks: await loadJwks(config.jwks) }),
    },
    passwordCost: config.passwordCost,
    rateLimits: {
      default: { ratePerSecond: config.rateLimits.ratePerSecond, burst: config.rateLimits.burst },
      methods: {
        "user.v1.UserService/Login": {
          ratePerSecond: config.rateLimits.loginPerMinute / 60,
          burst: config.rateLimits.loginBurst,
        },
      },
    },
    defaultTimeoutMs: config.defaultTimeoutMs,
    auditLog,
    ...(config.userServiceUrl === undefined ? {} : { userServiceUrl: config.userServiceUrl }),
    logger,
  });

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, "second signal: exiting at once");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, graceMs: config.shutdownGraceMs }, "stopping");
    server
      .close(config.shutdownGraceMs)
      .then(() => auditLog.close())
      .then(
        () => {
          logger.flush();
          process.exit(0);
        },
        (err: unknown) => {
          logger.error({ err }, "failed to stop cleanly");
          process.exit(1);
        },
      );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

async function loadJwks(source: { file: string } | { url: URL }): Promise<JSONWebKeySet | URL> {
  if ("url" in source) return source.url;
  return JSON.parse(await readFile(source.file, "utf8")) as JSONWebKeySet;
}

/** Opens the store the configuration names: the SQLite file, or PostgreSQL. */
export async function openStore(config: ServerConfig, logger: Logger): Promise<Store> {
  const db = config.database;
  if (db.kind === "sqlite") {
    const store = openSqliteStore({ path: db.path });
    logger.info({ path: db.path }, "opened the SQLite store");
    return store;
  }
  const store = await openPostgresStore({
    connectionString: db.url,
    schema: db.schema,
    poolSize: db.poolSize,
    onError: (err) => logger.warn({ err }, "database connection problem"),
  });
  // The URL may hold a password: log where, never how.
  const { hostname, port, pathname } = new URL(db.url);
  logger.info(
    { host: hostname, port, database: pathname.slice(1), schema: db.schema },
    "opened the PostgreSQL store",
  );
  return store;
}
