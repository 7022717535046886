#!/usr/bin/env node
import { openSqliteStore } from "@keel/store";
import { pino } from "pino";
import { ConfigError, loadConfig } from "./config.ts";
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
  const store = openSqliteStore({ path: config.sqlitePath });
  logger.info({ path: config.sqlitePath }, "opened the SQLite store");
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

main().catch((err: unknown) => {
  process.stderr.write(
    `keel-server: failed to start: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(1);
});
