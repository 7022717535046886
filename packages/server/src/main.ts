#!/usr/bin/env node
import { openPostgresStore, openSqliteStore, type Store } from "@keel/store";
import { type Logger, pino } from "pino";
import { ConfigError, loadConfig, type ServerConfig } from "./config.ts";
import { startServer } from "./server.ts";

/** The server process: configuration from the environment, SQLite store, clean stop on signals. */
async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`keel-server: ${err.message}\n`);
    process.exit(2);
  }
  const logger = pino({ level: config.logLevel, base: { service: "keel" } });
  if (config.jwt.generated) {
    logger.warn(
      { dataDir: config.dataDir },
      "KEEL_JWT_SECRET is not set: signing tokens with a development secret kept in the data directory",
    );
  }
  const store = await openStore(config, logger);
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
    },
    passwordCost: config.passwordCost,
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
    server.close(config.shutdownGraceMs).then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, "failed to stop cleanly");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

async function openStore(config: ServerConfig, logger: Logger): Promise<Store> {
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

main().catch((err: unknown) => {
  process.stderr.write(
    `keel-server: failed to start: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(1);
});
