/** What the configuration reference says about one setting, beside what the schema says. */
export interface SettingDescription {
  /** What it does, for an operator: a phrase, in Markdown. */
  meaning: string;
  /**
   * The default as words, where the schema's value would mislead: computed at start (from the
   * CPUs, the data directory, NODE_ENV) or the absence of a value meaning something.
   */
  default?: string;
}

/**
 * The words of the configuration reference (docs/configuration.md), by environment variable, or
 * by file key for a setting without one. Names, keys, defaults, allowed values and whether a
 * setting applies live come from the schema and the reload rules; a setting without words here
 * fails the configuration reference's test, which names it.
 */
export const settingDescriptions: Record<string, SettingDescription> = {
  KEEL_CONFIG: { meaning: "the YAML configuration file; every variable overrides its key" },
  KEEL_HOST: { meaning: "listen address of both ports" },
  KEEL_PORT: { meaning: "API port: gRPC, gRPC-Web, Connect and REST" },
  KEEL_ADMIN_PORT: { meaning: "admin port (`/metrics`, `/healthz`, `/readyz`)" },
  KEEL_DATA_DIR: { meaning: "data directory: SQLite file, development JWT secret, audit log" },
  KEEL_SQLITE_PATH: {
    meaning: "SQLite database file (when no `KEEL_DATABASE_URL`)",
    default: "`$KEEL_DATA_DIR/keel.db`",
  },
  KEEL_DATABASE_URL: { meaning: "`postgres://…`: use PostgreSQL instead of SQLite" },
  KEEL_DATABASE_SCHEMA: { meaning: "PostgreSQL schema for keel's tables (created when missing)" },
  KEEL_DATABASE_POOL_SIZE: { meaning: "PostgreSQL connections per instance (plus one for events)" },
  KEEL_USER_SERVICE_URL: {
    meaning: "where OrderService reaches UserService",
    default: "this process",
  },
  KEEL_USER_SERVICE_CA: {
    meaning: "PEM file of the CA that signed a remote UserService's certificate",
    default: "Node's CAs",
  },
  KEEL_USER_SERVICE_CERT: {
    meaning: "PEM client certificate for a remote UserService behind mutual TLS (with its key)",
  },
  KEEL_USER_SERVICE_KEY: { meaning: "the private key of `KEEL_USER_SERVICE_CERT`" },
  KEEL_JWT_SECRET: {
    meaning:
      "HS256 key, ≥ 32 characters; required when `NODE_ENV=production`, otherwise a random one is kept in `$KEEL_DATA_DIR/jwt-secret`",
    default: "generated",
  },
  KEEL_JWT_ACCEPTED_SECRETS: {
    meaning:
      "further HS256 keys whose tokens are accepted but that sign nothing, at most 8, comma-separated (see [Rotating the JWT signing key](security.md#rotating-the-jwt-signing-key))",
  },
  KEEL_API_KEY_SECRET: {
    meaning:
      "HMAC key API keys are stored under, ≥ 32 characters, the same on every instance; in production without one, API keys are off, otherwise a random one is kept in `$KEEL_DATA_DIR/api-key-secret` (see [API keys](security.md#api-keys-for-machines))",
    default: "generated",
  },
  KEEL_JWT_ISSUER: { meaning: "`iss` of issued and accepted tokens" },
  KEEL_JWT_AUDIENCE: { meaning: "`aud` of issued and accepted tokens" },
  KEEL_ACCESS_TOKEN_TTL_SECONDS: { meaning: "access token lifetime, in seconds" },
  KEEL_REFRESH_TOKEN_TTL_SECONDS: { meaning: "refresh token lifetime, in seconds (30 days)" },
  KEEL_JWKS_FILE: {
    meaning: "also accept RS256/ES256 access tokens signed by the keys in this JWKS file",
  },
  KEEL_JWKS_URL: {
    meaning: "also accept RS256/ES256 access tokens signed by the keys at this JWKS URL",
  },
  KEEL_OIDC_ISSUER: {
    meaning:
      "accept access tokens of this OpenID Connect issuer (its `iss`; discovery at `<issuer>/.well-known/openid-configuration`; see [OpenID Connect](security.md#openid-connect-tokens-of-another-identity-provider))",
  },
  KEEL_OIDC_AUDIENCE: {
    meaning: "the accepted `aud` values of the issuer's tokens, comma-separated",
    default: "— (required with an issuer)",
  },
  KEEL_OIDC_ROLES_CLAIM: {
    meaning:
      "the claim, or dotted path (`realm_access.roles`), holding the caller's roles: a list, or space-separated names",
  },
  "auth.oidc.roleMapping": {
    meaning:
      "the issuer's role names and the keel role each grants; unlisted ones grant nothing (configuration file only; without it the names are keel's)",
  },
  KEEL_OIDC_JWKS_COOLDOWN_MS: {
    meaning:
      "the least time between two fetches of the issuer's key set (a token naming an unknown `kid` fetches it again)",
  },
  KEEL_OIDC_JWKS_MAX_AGE_MS: { meaning: "fetch the issuer's key set again after this long" },
  KEEL_OIDC_TIMEOUT_MS: { meaning: "how long discovery and key set requests may take" },
  KEEL_PASSWORD_COST: { meaning: "log2 of scrypt's N for new password hashes" },
  KEEL_PASSWORD_HASH_CONCURRENCY: {
    meaning: "password hashes at once: more than the cores only slows each hash",
    default: "half the CPUs (≥ 1, ≤ 4)",
  },
  KEEL_PASSWORD_HASH_MAX_QUEUED: { meaning: "password hashes waiting, over all clients" },
  KEEL_PASSWORD_HASH_PER_CLIENT: {
    meaning: "password hashes one client address may have waiting or running",
  },
  KEEL_ACCOUNT_STATUS_MAX_AGE_MS: {
    meaning:
      "user statuses and API keys are read again after this long: how soon a suspension or a revocation reaches every instance",
  },
  KEEL_RATE_LIMIT_RPS: { meaning: "calls a second per caller and method (a token bucket's rate)" },
  KEEL_RATE_LIMIT_BURST: { meaning: "calls at once per caller and method (the bucket's size)" },
  KEEL_LOGIN_RATE_LIMIT_PER_MINUTE: { meaning: "Login attempts a minute per address" },
  KEEL_LOGIN_RATE_LIMIT_BURST: { meaning: "Login attempts at once per address" },
  KEEL_CREATE_USER_RATE_LIMIT_PER_MINUTE: {
    meaning: "CreateUser calls (sign-ups) a minute per address",
  },
  KEEL_CREATE_USER_RATE_LIMIT_BURST: { meaning: "CreateUser calls at once per address" },
  "rateLimits.methods": {
    meaning:
      "per-method limits: `package.Service/Method: { ratePerSecond, burst }` (configuration file only)",
  },
  KEEL_STREAM_LIMIT_PER_PRINCIPAL: {
    meaning: "streaming calls open at once per authenticated caller",
  },
  KEEL_STREAM_LIMIT_PER_ADDRESS: {
    meaning: "streaming calls open at once per address, for anonymous calls",
  },
  KEEL_DEFAULT_TIMEOUT_MS: {
    meaning: "deadline of unary and client-streaming calls that set none (0: none)",
  },
  KEEL_AUDIT_LOG: {
    meaning: "audit log file; `-` for standard output (`auditLog: <file>` works too)",
    default: "`$KEEL_DATA_DIR/audit.log`",
  },
  KEEL_AUDIT_LOG_MAX_BYTES: {
    meaning: "rotate the audit file before it passes this size (0: never)",
  },
  KEEL_AUDIT_LOG_KEEP: { meaning: "rotated audit files kept (`audit.log.1` … `.5`)" },
  KEEL_AUDIT_LOG_SUMMARY_INTERVAL_MS: {
    meaning: "repeated refusals of a caller: one audit line, then a count per interval (0: all)",
  },
  KEEL_LOG_LEVEL: { meaning: "the lowest level logged" },
  KEEL_LOG_FORMAT: {
    meaning: "`pretty` (readable lines), `json`, or `auto`: pretty when stdout is a terminal",
  },
  KEEL_LOG_REFUSAL_SUMMARY_INTERVAL_MS: {
    meaning:
      "refused calls: one log line per method and code, then a count per interval (0: a line each)",
  },
  KEEL_TRACING_ENDPOINT: { meaning: "OTLP/HTTP traces endpoint; no tracing export without it" },
  KEEL_TRACING_SAMPLING_RATIO: { meaning: "share of new traces sampled" },
  KEEL_SHUTDOWN_GRACE_MS: { meaning: "how long calls in flight may finish after SIGTERM/SIGINT" },
  KEEL_SHUTDOWN_DELAY_MS: { meaning: "how long to keep serving after turning NOT_SERVING" },
  KEEL_TLS_CERT: { meaning: "PEM certificate chain: serve TLS (with `KEEL_TLS_KEY`)" },
  KEEL_TLS_KEY: { meaning: "the private key of `KEEL_TLS_CERT`" },
  KEEL_TLS_CLIENT_CA: { meaning: "require client certificates signed by this CA (mutual TLS)" },
  KEEL_TLS_WATCH: {
    meaning:
      "serve renewed certificate, key and client CA files to new connections without a restart (see [TLS](operations.md#certificate-rotation-without-a-restart))",
  },
  KEEL_TLS_RELOAD_DELAY_MS: {
    meaning: "how long the TLS files must be quiet before a renewal is read",
  },
  KEEL_TLS_CA: { meaning: "the `keel` command's `--ca` (the server ignores it)" },
  KEEL_TLS_CLIENT_CERT: { meaning: "the `keel` command's `--cert` (the server ignores it)" },
  KEEL_TLS_CLIENT_KEY: { meaning: "the `keel` command's `--key` (the server ignores it)" },
  KEEL_HTTP2_MAX_CONCURRENT_STREAMS: { meaning: "streams per connection" },
  KEEL_HTTP2_KEEPALIVE_INTERVAL_MS: {
    meaning: "ping connections this often; close those that do not answer (0: never)",
  },
  KEEL_HTTP2_IDLE_TIMEOUT_MS: {
    meaning: "close connections without an open stream for this long (0: never)",
  },
  KEEL_HTTP2_MAX_CONNECTION_AGE_MS: {
    meaning: "GOAWAY older connections so clients rebalance (0: never)",
  },
  KEEL_MAX_MESSAGE_BYTES: {
    meaning: "largest message accepted or sent (larger → `RESOURCE_EXHAUSTED`)",
  },
  KEEL_REQUEST_BUFFER_PER_CONNECTION_BYTES: {
    meaning:
      "request bytes one connection may hold in memory at once, every protocol and REST (with `KEEL_ENGINE=connect`, REST only; more → `RESOURCE_EXHAUSTED`, REST 429)",
  },
  KEEL_REQUEST_BUFFER_PER_PROCESS_BYTES: {
    meaning:
      "request bytes all connections together may hold in memory at once (with `KEEL_ENGINE=connect`, REST only; more → `RESOURCE_EXHAUSTED`, REST 429); keep it well under the memory limit",
  },
  KEEL_REQUEST_BODY_IDLE_TIMEOUT_MS: {
    meaning:
      "a request body that goes this long without a byte fails its call (`DEADLINE_EXCEEDED`, REST 504; with `KEEL_ENGINE=connect`, REST only)",
  },
  KEEL_WORKERS: {
    meaning: "worker processes sharing the API port (1: none, 0: one per core)",
  },
  KEEL_CONSOLE: {
    meaning: "the API console at `/console`; off by default with `NODE_ENV=production`",
    default: "on (off in production)",
  },
  KEEL_ENGINE: {
    meaning:
      "what serves the calls: `keel` (`@keel/engine`, every protocol) or `connect` (connect-node's adapter for everything: for comparison, and an escape hatch)",
  },
  KEEL_CORS_ALLOWED_ORIGINS: {
    meaning: "origins whose pages may call the API from a browser (`https://app.example.com,…`)",
  },
  KEEL_IP_ALLOW: {
    meaning:
      "only these client addresses and CIDR ranges may call (`10.0.0.0/8,2001:db8::/32`; see [IP lists](security.md#ip-allow-and-deny-lists))",
  },
  KEEL_IP_DENY: {
    meaning: "these client addresses and ranges may not call, whatever the allow lists say",
  },
  "ipAccess.methods": {
    meaning:
      "per-method `allow` (replaces the global one) and `deny` (adds to it), keyed `package.Service/Method`",
  },
  KEEL_SHARED_RATE_LIMITS: {
    meaning:
      "one budget per caller across all instances and workers, kept in PostgreSQL (needs `KEEL_DATABASE_URL`; see [shared rate limits](security.md#rate-limits-shared-across-instances))",
  },
  KEEL_SHARED_RATE_LIMITS_MAX_BATCH: { meaning: "most tokens an instance reserves per round trip" },
  KEEL_SHARED_RATE_LIMITS_TIMEOUT_MS: {
    meaning: "a reservation slower than this counts as the database being unavailable",
  },
  KEEL_SHARED_RATE_LIMITS_WHEN_UNAVAILABLE: {
    meaning:
      "while the database does not answer: `local` (per-process limits) or `refuse` (`UNAVAILABLE`)",
  },
  KEEL_SHARED_RATE_LIMITS_POOL_SIZE: {
    meaning: "PostgreSQL connections for shared rate limits, apart from the store's",
  },
  KEEL_TRUSTED_PROXIES: {
    meaning:
      "addresses and CIDR ranges of proxies in front (`10.0.0.0/8,fd00::/8`): their forwarding header names the client",
  },
  KEEL_CLIENT_ADDRESS_HEADER: {
    meaning: "the header those proxies write the client into (`forwarded` is RFC 7239)",
  },
  KEEL_PROFILING: { meaning: "serve CPU and heap profiles on the admin port to admin tokens" },
  KEEL_PROFILING_MAX_SECONDS: { meaning: "the longest profile recording, in seconds" },
  KEEL_LOAD_SHEDDING: {
    meaning:
      "refuse new calls while the process is overloaded (see [Load shedding](operations.md#load-shedding-and-memory-limits))",
  },
  KEEL_LOAD_SHEDDING_EVENT_LOOP_DELAY_MS: {
    meaning: "overloaded above this mean event-loop delay (0: not watched)",
  },
  KEEL_LOAD_SHEDDING_EVENT_LOOP_UTILIZATION: {
    meaning: "overloaded above this share of time the event loop is busy (0: not watched)",
  },
  KEEL_LOAD_SHEDDING_OVERLOAD_FOR_MS: { meaning: "how long overload lasts before calls are shed" },
  KEEL_LOAD_SHEDDING_RECOVER_FOR_MS: {
    meaning: "how long the load stays below the thresholds before shedding stops",
  },
  KEEL_LOAD_SHEDDING_RETRY_AFTER_MS: {
    meaning: "the retry delay refused callers are given (`RetryInfo`, `retry-after`)",
  },
  KEEL_LOAD_SHEDDING_HEALTH_NOT_SERVING: {
    meaning: "report `NOT_SERVING` (health, `/readyz`) while shedding",
  },
  KEEL_LOAD_SAMPLE_INTERVAL_MS: {
    meaning:
      "how often load and memory are sampled (for load shedding and the memory limits; with either on, the load reports sum up these samples too)",
  },
  KEEL_MEMORY_HEAP_SOFT_LIMIT_BYTES: {
    meaning: "V8 heap in use above which new calls are shed (0: no limit)",
  },
  KEEL_MEMORY_HEAP_HARD_LIMIT_BYTES: {
    meaning: "V8 heap in use above which health also reports `NOT_SERVING` (0: no limit)",
  },
  KEEL_MEMORY_RSS_SOFT_LIMIT_BYTES: {
    meaning: "resident memory above which new calls are shed (0: no limit)",
  },
  KEEL_MEMORY_RSS_HARD_LIMIT_BYTES: {
    meaning: "resident memory above which health also reports `NOT_SERVING` (0: no limit)",
  },
  KEEL_LOAD_REPORTS: {
    meaning:
      "send an ORCA load report (`endpoint-load-metrics-bin` trailer) with every response, for weighted round robin",
  },
  KEEL_LOAD_REPORT_INTERVAL_MS: {
    meaning:
      "how often the load reported is measured (with load shedding or memory limits on, from their samples: to the nearest whole sample, at least one)",
  },
};
