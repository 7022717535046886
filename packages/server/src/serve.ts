import cluster from "node:cluster";
import { readFile } from "node:fs/promises";
import { HealthCheckResponse_ServingStatus } from "@keel/gen/health/v1/health_pb";
import { createAuditLog, type Hs256Keys } from "@keel/interceptors";
import { startTracing } from "@keel/observability";
import {
  type EventRelay,
  openPostgresStore,
  openPostgresTokenBuckets,
  openSqliteStore,
  type PostgresTokenBuckets,
  type Store,
} from "@keel/store";
import type { JSONWebKeySet } from "jose";
import type { Logger } from "pino";
import { AggregatorRegistry } from "prom-client";
import { formatBanner, type ServerUrls, serverUrls } from "./banner.ts";
import type { ServerConfig, Settings } from "./config.ts";
import { watchConfig } from "./config-reload.ts";
import type { LogFormat } from "./log-format.ts";
import { createProcessLogger } from "./process-logger.ts";
import { answerProfileRequests } from "./profile-relay.ts";
import { startServer } from "./server.ts";
import { readTlsMaterial } from "./tls-material.ts";
import { watchTlsFiles } from "./tls-reload.ts";

/** Warns when tokens are signed with the development secret rather than a configured one. */
export function warnIfGeneratedSecret(config: ServerConfig, logger: Pick<Logger, "warn">): void {
  if (!config.auth.generated) return;
  logger.warn(
    { dataDir: config.dataDir },
    "no JWT secret configured: signing tokens with a development secret kept in the data directory",
  );
}

/**
 * The server process: tracing, the store the configuration names, the audit log, the API and
 * admin ports, live reload of safe settings, and a clean stop on SIGTERM or SIGINT: health turns
 * NOT_SERVING, new connections stop, calls in flight finish, streams end with UNAVAILABLE, the
 * store and the audit log are closed, exit 0.
 */
export async function serve(config: ServerConfig): Promise<void> {
  // A cluster worker leaves the admin port to its primary, shares live events through it (when
  // on SQLite; PostgreSQL shares them itself) and stops when it says so.
  const worker = cluster.isWorker ? cluster.worker : undefined;
  const tracing = startTracing({
    serviceName: "keel",
    samplingRatio: config.tracing.samplingRatio,
    ...(config.tracing.endpoint === undefined ? {} : { endpoint: config.tracing.endpoint }),
  });
  const { logger, format } = createProcessLogger({
    level: config.log.level,
    format: config.log.format,
    base: { service: "keel", ...(worker === undefined ? {} : { worker: worker.id }) },
  });
  // Said once per server: in cluster mode, by the primary.
  if (worker === undefined) warnIfGeneratedSecret(config, logger);
  const store = await openStore(config, logger, worker === undefined ? undefined : workerRelay());
  const auditLog = createAuditLog({
    ...(config.audit === "stdout"
      ? { destination: process.stdout }
      : {
          path: config.audit.path,
          maxBytes: config.auditLog.maxBytes,
          keep: config.auditLog.keep,
        }),
    summary: { intervalMs: config.auditLog.summaryIntervalMs },
    onDrop: (dropped) => logger.warn({ dropped }, "audit log queue full: entries were dropped"),
    onError: (err) => logger.error({ err }, "audit log write failed"),
  });
  const tls = config.tls === undefined ? undefined : await readTlsMaterial(config.tls);
  const buckets = await openSharedBuckets(config, logger);
  const server = await startServer({
    host: config.host,
    port: config.port,
    adminPort: worker === undefined ? config.adminPort : null,
    store,
    tokens: {
      secret: config.auth.secret,
      acceptedSecrets: config.auth.acceptedSecrets,
      issuer: config.auth.issuer,
      audience: config.auth.audience,
      accessTtlSeconds: config.auth.accessTokenTtlSeconds,
      refreshTtlSeconds: config.auth.refreshTokenTtlSeconds,
      ...(await loadJwks(config.auth)),
    },
    ...(config.auth.oidc === undefined ? {} : { oidc: config.auth.oidc }),
    ...(config.auth.apiKeySecretBytes === undefined
      ? {}
      : { apiKeySecret: config.auth.apiKeySecretBytes }),
    passwordCost: config.auth.passwordCost,
    passwordHashing: {
      concurrency: config.auth.passwordHashing.concurrency,
      maxQueued: config.auth.passwordHashing.maxQueued,
      perCaller: config.auth.passwordHashing.perClient,
    },
    accountStatusMaxAgeMs: config.auth.accountStatusMaxAgeMs,
    rateLimits: rateLimitsOf(config),
    ...(buckets === undefined
      ? {}
      : {
          sharedRateLimits: {
            source: buckets,
            maxBatch: config.sharedRateLimits.maxBatch,
            timeoutMs: config.sharedRateLimits.timeoutMs,
            whenUnavailable: config.sharedRateLimits.whenUnavailable,
            onStateChange: (available, err) => {
              if (available) logger.info("shared rate limits: the database answers again");
              else
                logger.warn(
                  { err, whenUnavailable: config.sharedRateLimits.whenUnavailable },
                  "shared rate limits: the database does not answer in time",
                );
            },
          },
        }),
    streamLimits: config.streamLimits,
    defaultTimeoutMs: config.defaultTimeoutMs,
    refusalSummaryIntervalMs: config.log.refusalSummaryIntervalMs,
    console: config.consoleEnabled,
    engine: config.engine,
    corsAllowedOrigins: config.cors.allowedOrigins,
    maxMessageBytes: config.maxMessageBytes,
    requestBodies: config.requestBodies,
    http2: config.http2,
    ...(tls === undefined ? {} : { tls }),
    auditLog,
    clientAddress: { trustedProxies: config.trustedProxies, header: config.clientAddressHeader },
    ipAccess: config.ipAccess,
    ...(config.profiling.enabled && worker === undefined
      ? { profiling: { maxSeconds: config.profiling.maxSeconds } }
      : {}),
    loadReports: config.loadReports.enabled && { intervalMs: config.loadReports.intervalMs },
    ...loadProtectionOf(config),
    ...(config.userServiceUrl === undefined ? {} : { userServiceUrl: config.userServiceUrl }),
    ...(config.userServiceTls === undefined
      ? {}
      : { userServiceTls: await loadUserServiceTls(config.userServiceTls) }),
    logger,
  });
  // In cluster mode the primary says where the server is, once.
  if (worker === undefined) {
    announce(
      serverUrls({
        apiUrl: server.url,
        adminPort: server.adminPort,
        console: config.consoleEnabled,
      }),
      format,
      logger,
    );
  }
  // Rotating the keys makes every token be verified again: only when they change.
  let signedWith = JSON.stringify([
    config.settings.auth.jwtSecret,
    config.settings.auth.acceptedJwtSecrets,
  ]);
  const watcher =
    config.file === undefined
      ? undefined
      : watchConfig({
          file: config.file,
          // As read, not as resolved (absolute paths, the secret): only real edits differ.
          current: config.settings,
          logger,
          apply: (next) => {
            logger.level = next.log.level;
            server.refusals.setIntervalMs(next.log.refusalSummaryIntervalMs);
            server.rateLimiter.update(rateLimitsOf(next));
            tracing.setSamplingRatio(next.tracing.samplingRatio);
            const keys = JSON.stringify([next.auth.jwtSecret, next.auth.acceptedJwtSecrets]);
            if (keys !== signedWith) server.setSigningKeys(signingKeysOf(next, config));
            signedWith = keys;
            server.ipAccess.update(next.ipAccess);
          },
        });
  const tlsWatcher =
    config.tls === undefined || tls === undefined || !config.tls.watch
      ? undefined
      : watchTlsFiles({
          files: config.tls,
          current: tls,
          apply: (next) => server.setTls(next),
          delayMs: config.tls.reloadDelayMs,
          logger,
        });

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, "second signal: exiting at once");
      process.exit(1);
    }
    stopping = true;
    watcher?.close();
    tlsWatcher?.close();
    logger.info({ signal, graceMs: config.shutdown.graceMs }, "stopping");
    server
      .close({ graceMs: config.shutdown.graceMs, delayMs: config.shutdown.delayMs })
      .then(() => buckets?.close())
      .then(() => auditLog.close())
      .then(() => tracing.shutdown())
      .then(
        () => {
          logger.flush();
          process.exit(0);
        },
        (err: unknown) => {
          logger.error({ err }, "failed to stop cleanly");
          logger.flush();
          process.exit(1);
        },
      );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  if (worker !== undefined) {
    // Constructing one installs prom-client's answer to the primary's requests for metrics.
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries([server.metricsRegistry]);
    process.on("message", (message: { keel?: string }) => {
      if (message.keel === "shutdown") stop("SIGTERM");
    });
    if (config.profiling.enabled) answerProfileRequests();
    // The primary's /readyz answers for every worker: tell it when this one's readiness changes.
    let ready: boolean | undefined;
    const report = () => {
      const now = server.health.status("") === HealthCheckResponse_ServingStatus.SERVING;
      if (now !== ready) process.send?.({ keel: "ready", ready: now });
      ready = now;
    };
    report();
    const reporting = setInterval(report, 250);
    reporting.unref();
  }
}

/**
 * Says where the server answers: a banner on a terminal ("pretty" logs), one "ready" line with
 * the URLs as fields in JSON logs, which a log collector parses.
 */
export function announce(urls: ServerUrls, format: LogFormat, logger: Pick<Logger, "info">): void {
  if (format === "pretty") process.stdout.write(formatBanner(urls));
  else logger.info(urls, "ready");
}

/**
 * The HS256 keys `next` names: its secret (or, without one, the development secret read at start)
 * signs, its accepted secrets verify too.
 */
export function signingKeysOf(next: Settings, started: ServerConfig): Hs256Keys {
  const encode = (key: string) => new TextEncoder().encode(key);
  return {
    current: next.auth.jwtSecret === undefined ? started.auth.secret : encode(next.auth.jwtSecret),
    accepted: next.auth.acceptedJwtSecrets.map(encode),
  };
}

/** Live events through the cluster primary, which passes them to every other worker. */
function workerRelay(): EventRelay {
  return {
    send: (payload) => process.send?.({ keel: "event", payload }),
    onReceive: (listener) =>
      process.on("message", (message: { keel?: string; payload?: string }) => {
        if (message.keel === "event" && message.payload !== undefined) listener(message.payload);
      }),
  };
}

/** The rate limits the configuration asks for: the default, Login's and CreateUser's, per-method ones. */
function rateLimitsOf(config: Pick<ServerConfig, "rateLimits">) {
  const r = config.rateLimits;
  return {
    default: { ratePerSecond: r.ratePerSecond, burst: r.burst },
    methods: {
      "user.v1.UserService/Login": { ratePerSecond: r.loginPerMinute / 60, burst: r.loginBurst },
      "user.v1.UserService/CreateUser": {
        ratePerSecond: r.createUserPerMinute / 60,
        burst: r.createUserBurst,
      },
      ...r.methods,
    },
  };
}

/** Load shedding and memory limits as the server takes them; in cluster mode, per worker. */
function loadProtectionOf(config: Pick<ServerConfig, "loadShedding" | "memoryLimits">) {
  const { enabled, sampleIntervalMs, ...shedding } = config.loadShedding;
  const m = config.memoryLimits;
  return {
    ...(enabled ? { loadShedding: shedding } : {}),
    memoryLimits: {
      heap: { soft: m.heapSoftBytes, hard: m.heapHardBytes },
      rss: { soft: m.rssSoftBytes, hard: m.rssHardBytes },
    },
    loadSampleIntervalMs: sampleIntervalMs,
  };
}

/** The extra public keys for RS256/ES256 tokens, from a JWKS file or URL, when configured. */
async function loadJwks(auth: ServerConfig["auth"]): Promise<{ jwks?: JSONWebKeySet | URL }> {
  if (auth.jwksUrl !== undefined) return { jwks: new URL(auth.jwksUrl) };
  if (auth.jwksFile === undefined) return {};
  return { jwks: JSON.parse(await readFile(auth.jwksFile, "utf8")) as JSONWebKeySet };
}

/** The PEM files of `userServiceTls`, read. */
async function loadUserServiceTls(tls: NonNullable<ServerConfig["userServiceTls"]>) {
  const out: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
  for (const name of ["ca", "cert", "key"] as const) {
    const file = tls[name];
    if (file !== undefined) out[name] = await readFile(file);
  }
  return out;
}

/** The token buckets of shared rate limits, in the store's PostgreSQL, when they are enabled. */
async function openSharedBuckets(
  config: ServerConfig,
  logger: Logger,
): Promise<PostgresTokenBuckets | undefined> {
  const db = config.store;
  if (!config.sharedRateLimits.enabled || db.kind !== "postgres") return undefined;
  const buckets = await openPostgresTokenBuckets({
    connectionString: db.url,
    schema: db.schema,
    poolSize: config.sharedRateLimits.poolSize,
    onError: (err) => logger.warn({ err }, "shared rate limits: database connection problem"),
  });
  logger.info(
    { maxBatch: config.sharedRateLimits.maxBatch, timeoutMs: config.sharedRateLimits.timeoutMs },
    "rate limits shared through PostgreSQL",
  );
  return buckets;
}

/** Opens the store the configuration names: the SQLite file, or PostgreSQL. */
export async function openStore(
  config: ServerConfig,
  logger: Logger,
  relay?: EventRelay,
): Promise<Store> {
  const db = config.store;
  if (db.kind === "sqlite") {
    const store = openSqliteStore({
      path: db.path,
      ...(relay === undefined ? {} : { relay }),
      onWarning: (message) => logger.warn({ path: db.path }, message),
    });
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
