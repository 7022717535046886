import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { cidrProblem, maxHs256Keys } from "@keel/interceptors";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { describeIssue, unknownName } from "./config-problems.ts";
import { defaultHashConcurrency } from "./passwords.ts";
import { describeStartError } from "./start-errors.ts";

/** Limits of one method: a token bucket. */
const limit = z.strictObject({
  ratePerSecond: z.coerce.number().positive(),
  burst: z.coerce.number().int().min(1),
});

const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
const notPort = "is not a port number (0 to 65535)";
const port = z.coerce.number({ error: notPort }).int(notPort).min(0, notPort).max(65535, notPort);
const seconds = z.coerce.number().int().positive();
const milliseconds = z.coerce.number().int().min(0);
const bytes = z.coerce.number().int().min(0);
const mebibytes = (n: number) => n * 1024 * 1024;

/** YAML's true and false, or the words an environment variable holds ("true", "1", "on", …). */
const onOff = z.union([z.boolean(), z.stringbool()], { error: "must be true or false" });

/** A soft limit is below its hard one, when both are set (0 is none). */
const softBelowHard = (soft: number, hard: number) => soft === 0 || hard === 0 || soft < hard;

/** A list, written in YAML as a list or (as environment variables are) comma-separated. */
function commaList<T extends z.ZodType>(item: T) {
  return z.preprocess(
    (v) =>
      typeof v === "string"
        ? v
            .split(",")
            .map((o) => o.trim())
            .filter((o) => o !== "")
        : v,
    z.array(item),
  );
}

/** Addresses and CIDR ranges (`10.0.0.0/8`, `fd00::/8`, `192.0.2.7`), a list or comma-separated. */
const cidrList = commaList(
  z.string().superRefine((value, ctx) => {
    const problem = cidrProblem(value);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
  }),
);

/**
 * The configuration file's shape (YAML, camelCase keys), with defaults. Every key can also be set
 * by an environment variable (see `environment`), which wins over the file.
 */
export const settingsSchema = z.strictObject({
  host: z.string().min(1).default("0.0.0.0"),
  port: port.default(9090),
  /** Where /metrics, /healthz and /readyz are served; 0 picks a free port. */
  adminPort: port.default(9091),
  dataDir: z.string().min(1).default("data"),
  database: z
    .strictObject({
      url: z
        .string()
        .regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL")
        .optional(),
      schema: z
        .string()
        .regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be lower-case letters, digits and _")
        .default("public"),
      poolSize: z.coerce.number().int().min(1).max(1000).default(10),
      sqlitePath: z.string().min(1).optional(),
    })
    .default({ schema: "public", poolSize: 10 }),
  /** http(s)://host:port, or dns:///host:port for every address of a DNS name, balanced. */
  userServiceUrl: z
    .string()
    .refine(isServiceAddress, {
      error: "must be an http:// or https:// URL, or dns:///host:port",
    })
    .optional(),
  /**
   * TLS of an https:// `userServiceUrl`: PEM files of the CA that signed UserService's certificate
   * (default: Node's bundle) and of this server's client certificate and key, for mutual TLS.
   */
  userServiceTls: z
    .strictObject({
      ca: z.string().min(1).optional(),
      cert: z.string().min(1).optional(),
      key: z.string().min(1).optional(),
    })
    .refine((t) => (t.cert === undefined) === (t.key === undefined), {
      error: "cert and key go together: give both, or neither",
    })
    .optional(),
  auth: z
    .strictObject({
      jwtSecret: z.string().min(32, "must be at least 32 characters").optional(),
      /**
       * HS256 keys whose tokens are still accepted besides jwtSecret's, though they sign nothing:
       * the previous secret after a rotation, or the next one before it. Reloaded live.
       */
      acceptedJwtSecrets: commaList(z.string().min(32, "must be at least 32 characters"))
        .refine((list) => list.length <= maxHs256Keys - 1, {
          error: `at most ${maxHs256Keys - 1} secrets`,
        })
        .default([]),
      /** The HMAC key API keys are stored under; the same on every instance. */
      apiKeySecret: z.string().min(32, "must be at least 32 characters").optional(),
      issuer: z.string().min(1).default("keel"),
      audience: z.string().min(1).default("keel"),
      accessTokenTtlSeconds: seconds.default(900),
      refreshTokenTtlSeconds: seconds.default(30 * 24 * 3600),
      jwksFile: z.string().min(1).optional(),
      jwksUrl: z.url({ protocol: /^https?$/ }).optional(),
      /**
       * Access tokens of an external OpenID Connect issuer (Keycloak, Auth0, Entra ID, Dex, …),
       * found through its discovery document; see docs/security.md.
       */
      oidc: z
        .strictObject({
          issuer: z.url({ protocol: /^https?$/ }),
          audience: commaList(z.string().min(1)).refine((list) => list.length > 0, {
            error: "name at least one audience",
          }),
          rolesClaim: z
            .string()
            .regex(
              /^[\w:-]+(\.[\w:-]+)*$/,
              "must be a claim name or a dotted path such as realm_access.roles",
            )
            .default("roles"),
          roleMapping: z
            .record(
              z.string().min(1).max(64),
              z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, "must be a keel role name"),
            )
            .optional(),
          jwksCooldownMs: z.coerce.number().int().min(0).max(3_600_000).default(30_000),
          jwksMaxAgeMs: z.coerce.number().int().min(1000).max(86_400_000).default(600_000),
          timeoutMs: z.coerce.number().int().min(100).max(60_000).default(5000),
        })
        .optional(),
      passwordCost: z.coerce.number().int().min(10).max(20).default(15),
      /**
       * How long a user's status is trusted before it is read again: the longest a suspension
       * takes to stop the user's tokens on every instance and worker.
       */
      accountStatusMaxAgeMs: z.coerce.number().int().min(0).max(5000).default(2000),
      /** Password hashes (CreateUser, Login) at once, waiting in all, and per client address. */
      passwordHashing: z
        .strictObject({
          concurrency: z.coerce.number().int().min(1).max(64).default(defaultHashConcurrency),
          maxQueued: z.coerce.number().int().min(1).default(64),
          perClient: z.coerce.number().int().min(1).default(4),
        })
        .prefault({}),
    })
    .prefault({}),
  rateLimits: z
    .strictObject({
      ratePerSecond: z.coerce.number().positive().default(100),
      burst: z.coerce.number().int().min(1).default(200),
      loginPerMinute: z.coerce.number().positive().default(10),
      loginBurst: z.coerce.number().int().min(1).default(5),
      /** CreateUser per client address: sign-ups are anonymous, and each hashes a password. */
      createUserPerMinute: z.coerce.number().positive().default(10),
      createUserBurst: z.coerce.number().int().min(1).default(5),
      /** Per-method limits by procedure, for example "order.v1.OrderService/CreateOrder". */
      methods: z
        .record(z.string().regex(/^[\w.]+\/\w+$/, "must be package.Service/Method"), limit)
        .default({}),
    })
    .prefault({}),
  /**
   * Rate limits whose budgets hold across every instance and worker, kept in PostgreSQL (needs
   * `database.url`): tokens are reserved up to `maxBatch` at a time; a database slower than
   * `timeoutMs` or failing leaves calls counted by each process alone ("local") or refused
   * ("refuse") until it answers again.
   */
  sharedRateLimits: z
    .strictObject({
      enabled: onOff.default(false),
      maxBatch: z.coerce.number().int().min(1).max(1000).default(10),
      timeoutMs: z.coerce.number().int().min(1).max(10_000).default(100),
      whenUnavailable: z.enum(["local", "refuse"]).default("local"),
      /** Connections for rate limits, apart from the store's. */
      poolSize: z.coerce.number().int().min(1).max(100).default(4),
    })
    .prefault({}),
  /** Streaming calls open at once per authenticated caller, and per address for anonymous ones. */
  streamLimits: z
    .strictObject({
      perPrincipal: z.coerce.number().int().min(1).default(100),
      perAddress: z.coerce.number().int().min(1).default(200),
    })
    .default({ perPrincipal: 100, perAddress: 200 }),
  defaultTimeoutMs: milliseconds.default(30_000),
  /** The audit log: where (a file, or "-" for standard output), its rotation and summaries. */
  auditLog: z
    .strictObject({
      path: z.string().min(1).optional(),
      /** Rotate the file before it grows past this many bytes; 0: never. */
      maxBytes: bytes.default(mebibytes(100)),
      /** Rotated files kept: audit.log.1 … audit.log.<keep>. */
      keep: z.coerce.number().int().min(1).max(1000).default(5),
      /** Repeated refusals of one caller and method: one entry, then a count per interval; 0: off. */
      summaryIntervalMs: milliseconds.default(60_000),
    })
    .default({ maxBytes: mebibytes(100), keep: 5, summaryIntervalMs: 60_000 }),
  log: z
    .strictObject({
      level: z.enum(logLevels).default("info"),
      /** Readable lines ("pretty"), JSON lines, or "auto": readable when stdout is a terminal. */
      format: z.enum(["auto", "pretty", "json"]).default("auto"),
      /**
       * Refused calls (rate and stream limits, missing or bad tokens, denied access) are logged
       * once per method and code in each interval, the rest counted into one line; 0: every one.
       */
      refusalSummaryIntervalMs: milliseconds.default(10_000),
    })
    .default({ level: "info", format: "auto", refusalSummaryIntervalMs: 10_000 }),
  tracing: z
    .strictObject({
      endpoint: z.url({ protocol: /^https?$/ }).optional(),
      samplingRatio: z.coerce.number().min(0).max(1).default(0.1),
    })
    .default({ samplingRatio: 0.1 }),
  shutdown: z
    .strictObject({
      /** How long calls in flight may finish. */
      graceMs: milliseconds.default(10_000),
      /** How long to keep serving after health turns NOT_SERVING, so load balancers notice first. */
      delayMs: milliseconds.default(0),
    })
    .default({ graceMs: 10_000, delayMs: 0 }),
  tls: z
    .strictObject({
      cert: z.string().min(1),
      key: z.string().min(1),
      /** With a client CA, clients must present a certificate it signed (mutual TLS). */
      clientCa: z.string().min(1).optional(),
      /** Watch the three files and serve renewed ones to new connections, without a restart. */
      watch: z
        .union([z.boolean(), z.stringbool()], { error: "must be true or false" })
        .default(true),
      /** How long the files must be quiet before a renewal is read (it writes several files). */
      reloadDelayMs: z.coerce.number().int().min(0).max(60_000).default(1000),
    })
    .optional(),
  http2: z
    .strictObject({
      maxConcurrentStreams: z.coerce.number().int().min(1).default(1000),
      /** Ping idle connections this often to find dead ones; 0: never. */
      keepaliveIntervalMs: milliseconds.default(60_000),
      /** Close connections without an open stream or request for this long; 0: never. */
      idleTimeoutMs: milliseconds.default(300_000),
      /** Ask clients to reconnect (GOAWAY) after this long, to rebalance; 0: never. */
      maxConnectionAgeMs: milliseconds.default(0),
    })
    .default({
      maxConcurrentStreams: 1000,
      keepaliveIntervalMs: 60_000,
      idleTimeoutMs: 300_000,
      maxConnectionAgeMs: 0,
    }),
  maxMessageBytes: bytes.min(1024).default(mebibytes(4)),
  /**
   * Request bodies held in memory while they are read, on every protocol and REST: the bytes one
   * connection, and all of them together, may hold at once, and how long a body may go without a
   * byte.
   */
  requestBodies: z
    .strictObject({
      bufferedBytesPerConnection: bytes.min(1024).default(mebibytes(16)),
      bufferedBytesPerProcess: bytes.min(1024).default(mebibytes(256)),
      idleTimeoutMs: milliseconds.min(100).default(30_000),
    })
    .refine((b) => b.bufferedBytesPerConnection <= b.bufferedBytesPerProcess, {
      message: "bufferedBytesPerConnection must not be larger than bufferedBytesPerProcess",
    })
    .prefault({}),
  /** Worker processes sharing the port: 1 is none (one process), 0 is one per CPU core. */
  workers: z.coerce.number().int().min(0).max(256).default(1),
  /**
   * What serves the calls: keel's engine (`keel`), or connect-node's adapter for everything
   * (`connect`), for comparison and as an escape hatch.
   */
  engine: z.enum(["keel", "connect"]).default("keel"),
  /** The API console page at /console. Default: on, except with NODE_ENV=production. */
  console: z.strictObject({ enabled: z.stringbool().optional() }).default({}),
  /** Origins whose pages may call the API from a browser (CORS), for example https://app.example.com. */
  cors: z
    .strictObject({
      allowedOrigins: commaList(
        z
          .string()
          .regex(/^https?:\/\/[^/\s]+$/, "must be an origin such as https://app.example.com"),
      ).default([]),
    })
    .default({ allowedOrigins: [] }),
  /**
   * Addresses and CIDR ranges of the proxies in front (nginx, a load balancer): from them, the
   * client's address is read from `clientAddressHeader`. Default none: the socket's address.
   */
  trustedProxies: cidrList.default([]),
  /**
   * Client addresses allowed and denied (addresses and CIDR ranges, IPv4 and IPv6), as the
   * trusted-proxy rule yields them: everywhere, and per method ("package.Service/Method"), where a
   * method's `allow` replaces the global one and its `deny` adds to the global one. Reloaded live.
   */
  ipAccess: z
    .strictObject({
      allow: cidrList.default([]),
      deny: cidrList.default([]),
      methods: z
        .record(
          z.string().regex(/^[\w.]+\/\w+$/, "must be package.Service/Method"),
          z.strictObject({ allow: cidrList.default([]), deny: cidrList.default([]) }),
        )
        .default({}),
    })
    .prefault({}),
  /** The header the trusted proxies write the client's address into. */
  clientAddressHeader: z.enum(["x-forwarded-for", "forwarded"]).default("x-forwarded-for"),
  /**
   * CPU and heap profiles on the admin port (`/debug/profile/*`) for admin tokens; off by
   * default. `maxSeconds` bounds how long one recording may run.
   */
  profiling: z
    .strictObject({
      enabled: onOff.default(false),
      maxSeconds: z.coerce.number().int().min(1).max(3600).default(300),
    })
    .prefault({}),
  /**
   * ORCA load reports (`endpoint-load-metrics-bin`) in every response's trailers, for clients'
   * weighted round robin; the load is measured every `intervalMs`.
   */
  loadReports: z
    .strictObject({
      enabled: z
        .union([z.boolean(), z.stringbool()], { error: "must be true or false" })
        .default(true),
      intervalMs: z.coerce.number().int().min(100).max(60_000).default(1000),
    })
    .prefault({}),
  /**
   * Refuse new calls (RESOURCE_EXHAUSTED with a retry delay, before any work) while the event
   * loop is overloaded; off by default. Health calls and the admin port are never shed.
   */
  loadShedding: z
    .strictObject({
      enabled: onOff.default(false),
      /** Overloaded above this mean event-loop delay; 0: not watched. */
      eventLoopDelayMs: milliseconds.default(50),
      /** Overloaded above this share of time the event loop is busy; 0: not watched. */
      eventLoopUtilization: z.coerce.number().min(0).max(1).default(0.9),
      /** How long overload lasts before calls are shed. */
      overloadForMs: milliseconds.default(500),
      /** How long the load stays below the thresholds before shedding stops. */
      recoverForMs: milliseconds.default(2000),
      /** The retry delay refused callers are given (RetryInfo, `retry-after`). */
      retryAfterMs: milliseconds.default(1000),
      /** Report NOT_SERVING on grpc.health.v1 and /readyz while shedding. */
      healthNotServing: onOff.default(false),
      /** How often load and memory are sampled. */
      sampleIntervalMs: z.coerce.number().int().min(10).max(10_000).default(100),
    })
    .refine((s) => s.eventLoopDelayMs > 0 || s.eventLoopUtilization > 0, {
      error: "eventLoopDelayMs and eventLoopUtilization cannot both be 0: nothing would be watched",
    })
    .prefault({}),
  /**
   * The memory watchdog: above a soft limit new calls are shed, above a hard one health reports
   * NOT_SERVING. In bytes; 0: no limit (the default).
   */
  memoryLimits: z
    .strictObject({
      heapSoftBytes: bytes.default(0),
      heapHardBytes: bytes.default(0),
      rssSoftBytes: bytes.default(0),
      rssHardBytes: bytes.default(0),
    })
    .refine((m) => softBelowHard(m.heapSoftBytes, m.heapHardBytes), {
      error: "heapSoftBytes must be below heapHardBytes",
    })
    .refine((m) => softBelowHard(m.rssSoftBytes, m.rssHardBytes), {
      error: "rssSoftBytes must be below rssHardBytes",
    })
    .prefault({}),
});

/** An http(s) URL, or a gRPC DNS target (`dns:///host:port`, `dns://server/host:port`). */
function isServiceAddress(value: string): boolean {
  if (value.startsWith("dns:")) {
    return /^dns:(\/\/[^/]*\/)?(\[[0-9a-fA-F:.]+\]|[^:/[\]]+):\d{1,5}$/.test(value);
  }
  return URL.canParse(value) && /^https?:$/.test(new URL(value).protocol);
}

/** The configuration as written (file and environment merged) and validated. */
export type Settings = z.infer<typeof settingsSchema>;

/** Environment variables and the setting each one overrides. */
export const environment: Record<string, readonly string[]> = {
  KEEL_HOST: ["host"],
  KEEL_PORT: ["port"],
  KEEL_ADMIN_PORT: ["adminPort"],
  KEEL_DATA_DIR: ["dataDir"],
  KEEL_DATABASE_URL: ["database", "url"],
  KEEL_DATABASE_SCHEMA: ["database", "schema"],
  KEEL_DATABASE_POOL_SIZE: ["database", "poolSize"],
  KEEL_SQLITE_PATH: ["database", "sqlitePath"],
  KEEL_USER_SERVICE_URL: ["userServiceUrl"],
  KEEL_USER_SERVICE_CA: ["userServiceTls", "ca"],
  KEEL_USER_SERVICE_CERT: ["userServiceTls", "cert"],
  KEEL_USER_SERVICE_KEY: ["userServiceTls", "key"],
  KEEL_JWT_SECRET: ["auth", "jwtSecret"],
  KEEL_JWT_ACCEPTED_SECRETS: ["auth", "acceptedJwtSecrets"],
  KEEL_API_KEY_SECRET: ["auth", "apiKeySecret"],
  KEEL_JWT_ISSUER: ["auth", "issuer"],
  KEEL_JWT_AUDIENCE: ["auth", "audience"],
  KEEL_ACCESS_TOKEN_TTL_SECONDS: ["auth", "accessTokenTtlSeconds"],
  KEEL_REFRESH_TOKEN_TTL_SECONDS: ["auth", "refreshTokenTtlSeconds"],
  KEEL_JWKS_FILE: ["auth", "jwksFile"],
  KEEL_JWKS_URL: ["auth", "jwksUrl"],
  KEEL_OIDC_ISSUER: ["auth", "oidc", "issuer"],
  KEEL_OIDC_AUDIENCE: ["auth", "oidc", "audience"],
  KEEL_OIDC_ROLES_CLAIM: ["auth", "oidc", "rolesClaim"],
  KEEL_OIDC_JWKS_COOLDOWN_MS: ["auth", "oidc", "jwksCooldownMs"],
  KEEL_OIDC_JWKS_MAX_AGE_MS: ["auth", "oidc", "jwksMaxAgeMs"],
  KEEL_OIDC_TIMEOUT_MS: ["auth", "oidc", "timeoutMs"],
  KEEL_PASSWORD_COST: ["auth", "passwordCost"],
  KEEL_ACCOUNT_STATUS_MAX_AGE_MS: ["auth", "accountStatusMaxAgeMs"],
  KEEL_PASSWORD_HASH_CONCURRENCY: ["auth", "passwordHashing", "concurrency"],
  KEEL_PASSWORD_HASH_MAX_QUEUED: ["auth", "passwordHashing", "maxQueued"],
  KEEL_PASSWORD_HASH_PER_CLIENT: ["auth", "passwordHashing", "perClient"],
  KEEL_RATE_LIMIT_RPS: ["rateLimits", "ratePerSecond"],
  KEEL_RATE_LIMIT_BURST: ["rateLimits", "burst"],
  KEEL_LOGIN_RATE_LIMIT_PER_MINUTE: ["rateLimits", "loginPerMinute"],
  KEEL_LOGIN_RATE_LIMIT_BURST: ["rateLimits", "loginBurst"],
  KEEL_CREATE_USER_RATE_LIMIT_PER_MINUTE: ["rateLimits", "createUserPerMinute"],
  KEEL_CREATE_USER_RATE_LIMIT_BURST: ["rateLimits", "createUserBurst"],
  KEEL_SHARED_RATE_LIMITS: ["sharedRateLimits", "enabled"],
  KEEL_SHARED_RATE_LIMITS_MAX_BATCH: ["sharedRateLimits", "maxBatch"],
  KEEL_SHARED_RATE_LIMITS_TIMEOUT_MS: ["sharedRateLimits", "timeoutMs"],
  KEEL_SHARED_RATE_LIMITS_WHEN_UNAVAILABLE: ["sharedRateLimits", "whenUnavailable"],
  KEEL_SHARED_RATE_LIMITS_POOL_SIZE: ["sharedRateLimits", "poolSize"],
  KEEL_STREAM_LIMIT_PER_PRINCIPAL: ["streamLimits", "perPrincipal"],
  KEEL_STREAM_LIMIT_PER_ADDRESS: ["streamLimits", "perAddress"],
  KEEL_DEFAULT_TIMEOUT_MS: ["defaultTimeoutMs"],
  KEEL_AUDIT_LOG: ["auditLog", "path"],
  KEEL_AUDIT_LOG_MAX_BYTES: ["auditLog", "maxBytes"],
  KEEL_AUDIT_LOG_KEEP: ["auditLog", "keep"],
  KEEL_AUDIT_LOG_SUMMARY_INTERVAL_MS: ["auditLog", "summaryIntervalMs"],
  KEEL_LOG_LEVEL: ["log", "level"],
  KEEL_LOG_FORMAT: ["log", "format"],
  KEEL_LOG_REFUSAL_SUMMARY_INTERVAL_MS: ["log", "refusalSummaryIntervalMs"],
  KEEL_TRACING_ENDPOINT: ["tracing", "endpoint"],
  KEEL_TRACING_SAMPLING_RATIO: ["tracing", "samplingRatio"],
  KEEL_SHUTDOWN_GRACE_MS: ["shutdown", "graceMs"],
  KEEL_SHUTDOWN_DELAY_MS: ["shutdown", "delayMs"],
  KEEL_TLS_CERT: ["tls", "cert"],
  KEEL_TLS_KEY: ["tls", "key"],
  KEEL_TLS_CLIENT_CA: ["tls", "clientCa"],
  KEEL_TLS_WATCH: ["tls", "watch"],
  KEEL_TLS_RELOAD_DELAY_MS: ["tls", "reloadDelayMs"],
  KEEL_HTTP2_MAX_CONCURRENT_STREAMS: ["http2", "maxConcurrentStreams"],
  KEEL_HTTP2_KEEPALIVE_INTERVAL_MS: ["http2", "keepaliveIntervalMs"],
  KEEL_HTTP2_IDLE_TIMEOUT_MS: ["http2", "idleTimeoutMs"],
  KEEL_HTTP2_MAX_CONNECTION_AGE_MS: ["http2", "maxConnectionAgeMs"],
  KEEL_MAX_MESSAGE_BYTES: ["maxMessageBytes"],
  KEEL_REQUEST_BUFFER_PER_CONNECTION_BYTES: ["requestBodies", "bufferedBytesPerConnection"],
  KEEL_REQUEST_BUFFER_PER_PROCESS_BYTES: ["requestBodies", "bufferedBytesPerProcess"],
  KEEL_REQUEST_BODY_IDLE_TIMEOUT_MS: ["requestBodies", "idleTimeoutMs"],
  KEEL_WORKERS: ["workers"],
  KEEL_CONSOLE: ["console", "enabled"],
  KEEL_ENGINE: ["engine"],
  KEEL_CORS_ALLOWED_ORIGINS: ["cors", "allowedOrigins"],
  KEEL_TRUSTED_PROXIES: ["trustedProxies"],
  KEEL_CLIENT_ADDRESS_HEADER: ["clientAddressHeader"],
  KEEL_IP_ALLOW: ["ipAccess", "allow"],
  KEEL_IP_DENY: ["ipAccess", "deny"],
  KEEL_PROFILING: ["profiling", "enabled"],
  KEEL_PROFILING_MAX_SECONDS: ["profiling", "maxSeconds"],
  KEEL_LOAD_REPORTS: ["loadReports", "enabled"],
  KEEL_LOAD_REPORT_INTERVAL_MS: ["loadReports", "intervalMs"],
  KEEL_LOAD_SHEDDING: ["loadShedding", "enabled"],
  KEEL_LOAD_SHEDDING_EVENT_LOOP_DELAY_MS: ["loadShedding", "eventLoopDelayMs"],
  KEEL_LOAD_SHEDDING_EVENT_LOOP_UTILIZATION: ["loadShedding", "eventLoopUtilization"],
  KEEL_LOAD_SHEDDING_OVERLOAD_FOR_MS: ["loadShedding", "overloadForMs"],
  KEEL_LOAD_SHEDDING_RECOVER_FOR_MS: ["loadShedding", "recoverForMs"],
  KEEL_LOAD_SHEDDING_RETRY_AFTER_MS: ["loadShedding", "retryAfterMs"],
  KEEL_LOAD_SHEDDING_HEALTH_NOT_SERVING: ["loadShedding", "healthNotServing"],
  KEEL_LOAD_SAMPLE_INTERVAL_MS: ["loadShedding", "sampleIntervalMs"],
  KEEL_MEMORY_HEAP_SOFT_LIMIT_BYTES: ["memoryLimits", "heapSoftBytes"],
  KEEL_MEMORY_HEAP_HARD_LIMIT_BYTES: ["memoryLimits", "heapHardBytes"],
  KEEL_MEMORY_RSS_SOFT_LIMIT_BYTES: ["memoryLimits", "rssSoftBytes"],
  KEEL_MEMORY_RSS_HARD_LIMIT_BYTES: ["memoryLimits", "rssHardBytes"],
};

/**
 * `KEEL_*` variables that are not the server's settings, and that it therefore leaves alone:
 * the configuration file's name, and the CA and client certificate the `keel` command calls a
 * TLS server with.
 */
export const otherVariables: readonly string[] = [
  "KEEL_CONFIG",
  "KEEL_TLS_CA",
  "KEEL_TLS_CLIENT_CERT",
  "KEEL_TLS_CLIENT_KEY",
];

/** Variables for tests (KEEL_TEST_DATABASE_URL, …): never settings, whatever follows. */
const testPrefix = "KEEL_TEST_";

/** Every dotted key a configuration file may hold (those without a variable included). */
const fileKeys = [
  ...Object.values(environment).map((path) => path.join(".")),
  "rateLimits.methods",
  "auth.oidc.roleMapping",
  "ipAccess.methods",
];

/** Everything the server process is configured with, resolved (paths absolute, secret loaded). */
export interface ServerConfig extends Omit<Settings, "auth"> {
  /** The settings as read, before anything was resolved: what a reload compares with. */
  settings: Settings;
  /** The configuration file, when there is one (it is watched for safe live changes). */
  file: string | undefined;
  auth: Settings["auth"] & {
    /** The HS256 key tokens are signed with. */
    secret: Uint8Array;
    /** Further HS256 keys whose tokens are accepted (`acceptedJwtSecrets`). */
    acceptedSecrets: Uint8Array[];
    /** True when no secret was configured and a development one was generated into dataDir. */
    generated: boolean;
    /**
     * The API key HMAC key: the configured one, else (outside production, for the server) a
     * development one kept in `$KEEL_DATA_DIR/api-key-secret`; undefined: API keys are off.
     */
    apiKeySecretBytes: Uint8Array | undefined;
  };
  /** Where state lives: the embedded SQLite file, or PostgreSQL when a URL is configured. */
  store:
    | { kind: "sqlite"; path: string }
    | { kind: "postgres"; url: string; schema: string; poolSize: number };
  /** Where the audit log goes: a file, or standard output ("-"); `auditLog` has the rest. */
  audit: { path: string } | "stdout";
  /** Whether /console is served. */
  consoleEnabled: boolean;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/**
 * Reads the settings: the YAML file named by KEEL_CONFIG (if any), then `KEEL_*` environment
 * overrides, validated together. Problems are reported together, each naming its key or
 * variable; an unknown key or variable is a problem too.
 */
export function readSettings(env: NodeJS.ProcessEnv = process.env): {
  settings: Settings;
  file: string | undefined;
} {
  const file =
    env.KEEL_CONFIG === undefined || env.KEEL_CONFIG === "" ? undefined : resolve(env.KEEL_CONFIG);
  let raw: Record<string, unknown> = {};
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new ConfigError(
        `cannot read the configuration file ${file}: ${(err as Error).message}`,
      );
    }
    try {
      raw = (parseYaml(text) as Record<string, unknown> | null) ?? {};
    } catch (err) {
      throw new ConfigError(`${file} is not valid YAML: ${(err as Error).message}`);
    }
    if (typeof raw !== "object" || Array.isArray(raw))
      throw new ConfigError(`${file} must hold a mapping of settings`);
  }
  const unknown = Object.keys(env).filter(
    (key) =>
      key.startsWith("KEEL_") &&
      !key.startsWith(testPrefix) &&
      !(key in environment) &&
      !otherVariables.includes(key),
  );
  if (unknown.length > 0) {
    const known = new Set([...Object.keys(environment), ...otherVariables]);
    throw new ConfigError(
      `invalid configuration: ${unknown.map((name) => unknownName(name, name, known)).join("; ")}`,
    );
  }
  // `auditLog: /var/log/keel/audit.log` names the file alone.
  if (typeof raw.auditLog === "string") raw.auditLog = { path: raw.auditLog };
  const fromEnv = new Map<string, string>();
  for (const [variable, path] of Object.entries(environment)) {
    const value = env[variable];
    if (value === undefined || value === "") continue;
    setPath(raw, path, value);
    fromEnv.set(path.join("."), variable);
  }
  const parsed = settingsSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    const source = { fromEnv, raw, knownKeys: fileKeys };
    const problems = parsed.error.issues.map((issue) => describeIssue(issue, source));
    throw new ConfigError(
      `invalid configuration${file === undefined ? "" : ` (${file})`}: ${problems.join("; ")}`,
    );
  }
  return { settings: parsed.data, file };
}

/** What `loadConfig` does about the JWT secret. */
export interface LoadConfigOptions {
  /**
   * "create" (the default, the server's): the configured secret, else the development one in
   * `$KEEL_DATA_DIR/jwt-secret`, created when missing. "existing" (a command that signs with the
   * server's key): the same, but a missing development secret is a ConfigError naming the file,
   * never a new secret whose tokens the server would refuse. "none" (a command that signs
   * nothing): no secret is read; `auth.secret` is empty.
   */
  secret?: "create" | "existing" | "none";
}

/** Reads and resolves the whole configuration for the server process. */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  options: LoadConfigOptions = {},
): ServerConfig {
  const { settings: s, file } = readSettings(env);
  const dataDir = resolve(s.dataDir);
  const mode = options.secret ?? "create";
  if (s.auth.jwtSecret === undefined && env.NODE_ENV === "production" && mode !== "none") {
    throw new ConfigError(
      "invalid configuration: KEEL_JWT_SECRET (auth.jwtSecret): required when NODE_ENV=production",
    );
  }
  if (s.sharedRateLimits.enabled && s.database.url === undefined) {
    throw new ConfigError(
      "invalid configuration: KEEL_SHARED_RATE_LIMITS (sharedRateLimits.enabled): rate limits are shared through PostgreSQL; set KEEL_DATABASE_URL (database.url) too",
    );
  }
  const secret =
    s.auth.jwtSecret !== undefined
      ? new TextEncoder().encode(s.auth.jwtSecret)
      : mode === "none"
        ? new Uint8Array()
        : developmentSecretOf(dataDir, mode === "create");
  return {
    ...s,
    settings: s,
    file,
    dataDir,
    auth: {
      ...s.auth,
      secret,
      acceptedSecrets: s.auth.acceptedJwtSecrets.map((key) => new TextEncoder().encode(key)),
      generated: s.auth.jwtSecret === undefined,
      apiKeySecretBytes:
        s.auth.apiKeySecret !== undefined
          ? new TextEncoder().encode(s.auth.apiKeySecret)
          : mode === "create" && env.NODE_ENV !== "production"
            ? developmentSecretOf(dataDir, true, "api-key-secret")
            : undefined,
      ...(s.auth.jwksFile === undefined ? {} : { jwksFile: resolve(s.auth.jwksFile) }),
    },
    store:
      s.database.url === undefined
        ? { kind: "sqlite", path: resolve(s.database.sqlitePath ?? join(dataDir, "keel.db")) }
        : {
            kind: "postgres",
            url: s.database.url,
            schema: s.database.schema,
            poolSize: s.database.poolSize,
          },
    audit:
      s.auditLog.path === "-"
        ? "stdout"
        : { path: resolve(s.auditLog.path ?? join(dataDir, "audit.log")) },
    consoleEnabled: s.console.enabled ?? env.NODE_ENV !== "production",
  };
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== "object" || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path.at(-1) as string] = value;
}

/** The development secret; a file system failure names KEEL_DATA_DIR, where it lives. */
function developmentSecretOf(dataDir: string, create: boolean, name = "jwt-secret"): Uint8Array {
  try {
    return developmentSecret(dataDir, create, name);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const sources = [{ setting: "KEEL_DATA_DIR (dataDir)", path: dataDir }];
    throw new Error(describeStartError(err, sources), { cause: err });
  }
}

/**
 * A random secret kept in the data directory, so that tokens survive restarts in development;
 * created when missing only if `create`.
 */
function developmentSecret(dataDir: string, create: boolean, name: string): Uint8Array {
  const path = join(dataDir, name);
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  if (!create) {
    throw new ConfigError(
      `no JWT secret: KEEL_JWT_SECRET (auth.jwtSecret) is not set and ${path} does not exist. Use the server's KEEL_JWT_SECRET or KEEL_DATA_DIR (or KEEL_CONFIG), or start the server once to create the development secret there`,
    );
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
