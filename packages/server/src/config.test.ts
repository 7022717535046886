import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ConfigError, loadConfig, readSettings, type Settings } from "./config.ts";
import { watchConfig } from "./config-reload.ts";

const dir = mkdtempSync(join(tmpdir(), "keel-config-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(yaml: string): string {
  const path = join(dir, `keel${++n}.yaml`);
  writeFileSync(path, yaml);
  return path;
}

describe("configuration", () => {
  it("reads YAML, lets the environment win, and fills defaults", () => {
    const path = file(`
port: 7000
database:
  url: postgres://keel@db:5432/keel
  poolSize: 4
rateLimits:
  ratePerSecond: 50
  methods:
    order.v1.OrderService/CreateOrder: { ratePerSecond: 2, burst: 4 }
log: { level: warn }
tls: { cert: a.pem, key: b.pem }
`);
    const config = loadConfig({
      KEEL_CONFIG: path,
      KEEL_PORT: "7100",
      KEEL_DATA_DIR: dir,
      KEEL_JWT_SECRET: "x".repeat(32),
    });
    assert.equal(config.port, 7100);
    assert.equal(config.adminPort, 9091);
    assert.deepEqual(config.store, {
      kind: "postgres",
      url: "postgres://keel@db:5432/keel",
      schema: "public",
      poolSize: 4,
    });
    assert.equal(config.rateLimits.ratePerSecond, 50);
    assert.equal(config.rateLimits.burst, 200);
    assert.deepEqual(config.rateLimits.methods, {
      "order.v1.OrderService/CreateOrder": { ratePerSecond: 2, burst: 4 },
    });
    assert.equal(config.log.level, "warn");
    assert.deepEqual(config.tls, { cert: "a.pem", key: "b.pem", watch: true, reloadDelayMs: 1000 });
    assert.equal(config.file, path);
  });

  it("rotates and summarises the audit log by default; a file name alone still names the file", () => {
    const defaults = loadConfig({ KEEL_DATA_DIR: dir, KEEL_JWT_SECRET: "x".repeat(32) });
    assert.deepEqual(defaults.auditLog, {
      maxBytes: 100 * 1024 * 1024,
      keep: 5,
      summaryIntervalMs: 60_000,
    });
    assert.deepEqual(defaults.audit, { path: join(dir, "audit.log") });
    const set = loadConfig({
      KEEL_CONFIG: file("auditLog: /var/log/keel/audit.log\n"),
      KEEL_DATA_DIR: dir,
      KEEL_JWT_SECRET: "x".repeat(32),
      KEEL_AUDIT_LOG_MAX_BYTES: "1048576",
      KEEL_AUDIT_LOG_KEEP: "10",
    });
    assert.deepEqual(set.audit, { path: "/var/log/keel/audit.log" });
    assert.equal(set.auditLog.maxBytes, 1 << 20);
    assert.equal(set.auditLog.keep, 10);
  });

  it("reads IP lists from the file and the environment, and names a bad range", () => {
    const config = loadConfig({
      KEEL_CONFIG: file(`
ipAccess:
  deny: [203.0.113.0/24]
  methods:
    user.v1.UserService/ListUsers: { allow: ["10.0.0.0/8", "fd00::/8"] }
`),
      KEEL_DATA_DIR: dir,
      KEEL_JWT_SECRET: "x".repeat(32),
      KEEL_IP_ALLOW: "10.0.0.0/8, 2001:db8::/32",
    });
    assert.deepEqual(config.ipAccess, {
      allow: ["10.0.0.0/8", "2001:db8::/32"],
      deny: ["203.0.113.0/24"],
      methods: { "user.v1.UserService/ListUsers": { allow: ["10.0.0.0/8", "fd00::/8"], deny: [] } },
    });
    assert.deepEqual(loadConfig({ KEEL_DATA_DIR: dir, KEEL_JWT_SECRET: "x".repeat(32) }).ipAccess, {
      allow: [],
      deny: [],
      methods: {},
    });
    assert.throws(
      () => readSettings({ KEEL_IP_DENY: "10.0.0.0/33" }),
      /KEEL_IP_DENY: "10\.0\.0\.0\/33" is not an address or CIDR range .*prefix length must be 0 to 32/,
    );
    assert.throws(
      () =>
        readSettings({
          KEEL_CONFIG: file("ipAccess: { methods: { ListUsers: { allow: [] } } }\n"),
        }),
      /ipAccess\.methods\.ListUsers: the key "ListUsers" must be package\.Service\/Method$/,
    );
  });

  it("keeps API keys under the configured secret, a development one, or none in production", () => {
    const data = join(dir, `api-keys-${++n}`);
    const base = { KEEL_DATA_DIR: data, KEEL_JWT_SECRET: "x".repeat(32) };
    const configured = loadConfig({ ...base, KEEL_API_KEY_SECRET: "k".repeat(32) });
    assert.deepEqual(configured.auth.apiKeySecretBytes, new TextEncoder().encode("k".repeat(32)));
    const development = loadConfig(base).auth.apiKeySecretBytes;
    assert.equal(development?.byteLength, 32);
    assert.deepEqual(
      loadConfig(base).auth.apiKeySecretBytes,
      development,
      "kept in the data directory",
    );
    assert.equal(loadConfig({ ...base, NODE_ENV: "production" }).auth.apiKeySecretBytes, undefined);
    assert.equal(loadConfig(base, { secret: "none" }).auth.apiKeySecretBytes, undefined);
    assert.throws(
      () => readSettings({ KEEL_API_KEY_SECRET: "short secret" }),
      /^ConfigError: invalid configuration: KEEL_API_KEY_SECRET: the value must be at least 32 characters$/,
    );
  });

  it("shares rate limits only through PostgreSQL", () => {
    const base = { KEEL_DATA_DIR: dir, KEEL_JWT_SECRET: "x".repeat(32) };
    assert.deepEqual(loadConfig(base).sharedRateLimits, {
      enabled: false,
      maxBatch: 10,
      timeoutMs: 100,
      whenUnavailable: "local",
      poolSize: 4,
    });
    assert.throws(
      () => loadConfig({ ...base, KEEL_SHARED_RATE_LIMITS: "true" }),
      /KEEL_SHARED_RATE_LIMITS \(sharedRateLimits\.enabled\): rate limits are shared through PostgreSQL; set KEEL_DATABASE_URL/,
    );
    const shared = loadConfig({
      ...base,
      KEEL_DATABASE_URL: "postgres://keel@db:5432/keel",
      KEEL_SHARED_RATE_LIMITS: "on",
      KEEL_SHARED_RATE_LIMITS_WHEN_UNAVAILABLE: "refuse",
    });
    assert.equal(shared.sharedRateLimits.enabled, true);
    assert.equal(shared.sharedRateLimits.whenUnavailable, "refuse");
    assert.throws(
      () => readSettings({ KEEL_SHARED_RATE_LIMITS_WHEN_UNAVAILABLE: "open" }),
      /KEEL_SHARED_RATE_LIMITS_WHEN_UNAVAILABLE: "open" must be one of local, refuse/,
    );
  });

  it("bounds streams per caller and idle connections by default; both can be set", () => {
    const defaults = loadConfig({ KEEL_DATA_DIR: dir, KEEL_JWT_SECRET: "x".repeat(32) });
    assert.deepEqual(defaults.streamLimits, { perPrincipal: 100, perAddress: 200 });
    assert.equal(defaults.http2.idleTimeoutMs, 300_000);
    const set = loadConfig({
      KEEL_DATA_DIR: dir,
      KEEL_JWT_SECRET: "x".repeat(32),
      KEEL_STREAM_LIMIT_PER_PRINCIPAL: "10",
      KEEL_STREAM_LIMIT_PER_ADDRESS: "20",
      KEEL_HTTP2_IDLE_TIMEOUT_MS: "0",
    });
    assert.deepEqual(set.streamLimits, { perPrincipal: 10, perAddress: 20 });
    assert.equal(set.http2.idleTimeoutMs, 0);
  });

  it("names every bad key and value, by file path or variable", () => {
    const path = file(
      "port: 99999\nlog: { level: loud }\nmystery: 1\ntracing: { samplingRatio: 2, extra: true }\n",
    );
    assert.throws(
      () => readSettings({ KEEL_CONFIG: path }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        for (const part of [
          "unknown setting mystery",
          "unknown setting tracing.extra",
          "port:",
          "log.level:",
          "tracing.samplingRatio:",
        ]) {
          assert.ok(err.message.includes(part), `${part} in ${err.message}`);
        }
        return true;
      },
    );
    assert.throws(
      () => readSettings({ KEEL_DEFAULT_TIMEOUT_MS: "soon" }),
      /KEEL_DEFAULT_TIMEOUT_MS: /,
    );
    assert.throws(
      () => readSettings({ KEEL_CONFIG: join(dir, "missing.yaml") }),
      /cannot read the configuration file/,
    );
    assert.throws(() => readSettings({ KEEL_CONFIG: file("port: [") }), /is not valid YAML/);
  });

  it("leaves test variables alone, suggests the nearest name for an unknown one, and quotes bad values", () => {
    // docs/contributing.md tells developers to export KEEL_TEST_DATABASE_URL: the server still starts.
    const settings = readSettings({
      KEEL_TEST_DATABASE_URL: "postgres://postgres@127.0.0.1:5432/test",
      KEEL_TEST_ANYTHING: "x",
      KEEL_PORT: "9100",
    }).settings;
    assert.equal(settings.port, 9100);
    const problem = (env: NodeJS.ProcessEnv) => {
      try {
        readSettings(env);
      } catch (err) {
        assert.ok(err instanceof ConfigError);
        return err.message.replace(/^invalid configuration(?: \([^)]*\))?: /, "");
      }
      assert.fail("no problem reported");
    };
    assert.equal(
      problem({ KEEL_PROT: "9090" }),
      "unknown setting KEEL_PROT: did you mean KEEL_PORT?",
    );
    assert.equal(
      problem({ KEEL_JWT_SECRT: "x", KEEL_LOG_LEVL: "debug" }),
      "unknown setting KEEL_JWT_SECRT: did you mean KEEL_JWT_SECRET?; unknown setting KEEL_LOG_LEVL: did you mean KEEL_LOG_LEVEL?",
    );
    assert.equal(problem({ KEEL_FROBNICATE: "1" }), "unknown setting KEEL_FROBNICATE");
    assert.equal(
      problem({ KEEL_PORT: "abc" }),
      'KEEL_PORT: "abc" is not a port number (0 to 65535)',
    );
    assert.equal(
      problem({ KEEL_ADMIN_PORT: "70000" }),
      'KEEL_ADMIN_PORT: "70000" is not a port number (0 to 65535)',
    );
    assert.equal(problem({ KEEL_WORKERS: "1.5" }), 'KEEL_WORKERS: "1.5" is not a whole number');
    assert.equal(
      problem({ KEEL_PASSWORD_COST: "30" }),
      'KEEL_PASSWORD_COST: "30" must be at most 20',
    );
    assert.equal(
      problem({ KEEL_LOG_LEVEL: "loud" }),
      'KEEL_LOG_LEVEL: "loud" must be one of fatal, error, warn, info, debug, trace, silent',
    );
    assert.equal(
      problem({ KEEL_TRACING_ENDPOINT: "collector:4318" }),
      'KEEL_TRACING_ENDPOINT: "collector:4318" is not an http:// or https:// URL',
    );
    // Secrets are never repeated.
    assert.equal(
      problem({ KEEL_JWT_SECRET: "hunter2" }),
      "KEEL_JWT_SECRET: the value must be at least 32 characters",
    );
    assert.equal(
      problem({ KEEL_CONFIG: file("prot: 9090\nauth: { isuer: x }\n") }),
      "unknown setting auth.isuer: did you mean auth.issuer?; unknown setting prot: did you mean port?",
    );
    assert.equal(
      problem({ KEEL_CONFIG: file("tls: { cert: a.pem }\nhttp2: { idleTimeoutMs: -1 }\n") }),
      "tls.key: is required; http2.idleTimeoutMs: -1 must be at least 0",
    );
  });

  it("reads an OpenID Connect issuer from the environment or the file, and names what is wrong", () => {
    const oidc = readSettings({
      KEEL_OIDC_ISSUER: "https://idp.example/realms/keel",
      KEEL_OIDC_AUDIENCE: "keel-api, account",
      KEEL_OIDC_ROLES_CLAIM: "realm_access.roles",
    }).settings.auth.oidc;
    assert.deepEqual(oidc, {
      issuer: "https://idp.example/realms/keel",
      audience: ["keel-api", "account"],
      rolesClaim: "realm_access.roles",
      jwksCooldownMs: 30_000,
      jwksMaxAgeMs: 600_000,
      timeoutMs: 5000,
    });
    const path = file(
      'auth: { oidc: { issuer: "https://idp.example", audience: [a], roleMapping: { "idp-admin": admin } } }\n',
    );
    assert.deepEqual(readSettings({ KEEL_CONFIG: path }).settings.auth.oidc?.roleMapping, {
      "idp-admin": "admin",
    });
    assert.throws(() => readSettings({ KEEL_OIDC_AUDIENCE: "keel-api" }), {
      message: "invalid configuration: auth.oidc.issuer: is required",
    });
    assert.throws(
      () =>
        readSettings({
          KEEL_OIDC_ISSUER: "ftp://idp.example",
          KEEL_OIDC_AUDIENCE: "a",
          KEEL_OIDC_ROLES_CLAIM: "realm_access..roles",
        }),
      /KEEL_OIDC_ISSUER: "ftp:\/\/idp\.example" .*; KEEL_OIDC_ROLES_CLAIM: "realm_access\.\.roles" must be a claim name or a dotted path/,
    );
    const badRole = file(
      'auth: { oidc: { issuer: "https://idp.example", audience: [a], roleMapping: { x: Admin } } }\n',
    );
    assert.throws(
      () => readSettings({ KEEL_CONFIG: badRole }),
      /auth\.oidc\.roleMapping\.x: "Admin" must be a keel role name/,
    );
  });

  it("reads whether and after how long renewed TLS files are served, and names a bad value", () => {
    const tls = { KEEL_TLS_CERT: "a.pem", KEEL_TLS_KEY: "b.pem" };
    const settings = readSettings({
      ...tls,
      KEEL_TLS_WATCH: "false",
      KEEL_TLS_RELOAD_DELAY_MS: "250",
    }).settings;
    assert.deepEqual(settings.tls, {
      cert: "a.pem",
      key: "b.pem",
      watch: false,
      reloadDelayMs: 250,
    });
    assert.throws(
      () => readSettings({ ...tls, KEEL_TLS_WATCH: "sometimes", KEEL_TLS_RELOAD_DELAY_MS: "-1" }),
      {
        message:
          'invalid configuration: KEEL_TLS_WATCH: "sometimes" must be true or false; KEEL_TLS_RELOAD_DELAY_MS: "-1" must be at least 0',
      },
    );
  });

  it("reads trusted proxies as a list, and names a bad range by its variable or key", () => {
    const none = readSettings({}).settings;
    assert.deepEqual([none.trustedProxies, none.clientAddressHeader], [[], "x-forwarded-for"]);
    const env = readSettings({
      KEEL_TRUSTED_PROXIES: " 10.0.0.0/8, fd00::/8 ,127.0.0.1",
      KEEL_CLIENT_ADDRESS_HEADER: "forwarded",
    }).settings;
    assert.deepEqual(env.trustedProxies, ["10.0.0.0/8", "fd00::/8", "127.0.0.1"]);
    assert.equal(env.clientAddressHeader, "forwarded");
    assert.throws(
      () => readSettings({ KEEL_TRUSTED_PROXIES: "10.0.0.0/8,10.0.0.0/33" }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(
          err.message,
          'invalid configuration: KEEL_TRUSTED_PROXIES: "10.0.0.0/33" is not an address or CIDR range such as 10.0.0.0/8 or fd00::/8: the prefix length must be 0 to 32',
        );
        return true;
      },
    );
    const path = file("trustedProxies: [10.0.0.0/8, nginx]\n");
    assert.throws(
      () => readSettings({ KEEL_CONFIG: path }),
      /trustedProxies\.1: "nginx" is not an address or CIDR range/,
    );
    assert.throws(
      () => readSettings({ KEEL_CLIENT_ADDRESS_HEADER: "x-real-ip" }),
      /KEEL_CLIENT_ADDRESS_HEADER: /,
    );
  });
});

/** `watchConfig` on `path`: what it applied and logged, and a wait for either. */
function watching(path: string) {
  const applied: Settings[] = [];
  const logged: { level: string; message: string; fields: unknown }[] = [];
  const log = (level: string) => (fields: unknown, message: string) =>
    logged.push({ level, message, fields });
  const watcher = watchConfig({
    file: path,
    current: readSettings({ KEEL_CONFIG: path }).settings,
    apply: (next) => applied.push(next),
    logger: { info: log("info"), warn: log("warn"), error: log("error") } as never,
    env: {},
  });
  const until = async (check: () => boolean) => {
    for (let waited = 0; !check() && waited < 5000; waited += 20) await sleep(20);
    assert.ok(check(), JSON.stringify(logged));
  };
  return { applied, logged, until, watcher };
}

describe("configuration reload", () => {
  it("applies safe settings, keeps the running ones on a bad file, and says what needs a restart", async () => {
    const path = file("log: { level: info }\n");
    const { applied, logged, until, watcher } = watching(path);
    try {
      writeFileSync(path, "log: { level: debug }\nrateLimits: { ratePerSecond: 7 }\n");
      await until(() => applied.length === 1);
      assert.equal(applied[0]?.log.level, "debug");
      assert.equal(applied[0]?.rateLimits.ratePerSecond, 7);

      writeFileSync(path, "log: { level: shouting }\n");
      await until(() => logged.some((l) => l.level === "error"));
      assert.equal(applied.length, 1, "an invalid file changes nothing");

      writeFileSync(path, "log: { level: debug }\nrateLimits: { ratePerSecond: 7 }\nport: 1234\n");
      await until(() => logged.some((l) => l.level === "warn"));
      assert.deepEqual(logged.find((l) => l.level === "warn")?.fields, { settings: ["port"] });
      assert.equal(applied.length, 1, "only safe settings are applied, and those did not change");
    } finally {
      watcher.close();
    }
  });

  it("applies new JWT signing keys live, while another auth setting needs a restart", async () => {
    const a = "the first signing key, 32 characters or more";
    const b = "the second signing key, 32 characters or more";
    const path = file(`auth: { jwtSecret: "${a}" }\n`);
    const { applied, logged, until, watcher } = watching(path);
    try {
      writeFileSync(path, `auth: { jwtSecret: "${b}", acceptedJwtSecrets: ["${a}"] }\n`);
      await until(() => applied.length === 1);
      assert.deepEqual([applied[0]?.auth.jwtSecret, applied[0]?.auth.acceptedJwtSecrets], [b, [a]]);
      assert.deepEqual(
        logged.map((l) => [l.level, l.fields]),
        [["info", { settings: ["auth.jwtSecret", "auth.acceptedJwtSecrets"] }]],
      );
      writeFileSync(path, `auth: { jwtSecret: "${b}", acceptedJwtSecrets: ["${a}"], issuer: x }\n`);
      await until(() => logged.some((l) => l.level === "warn"));
      assert.deepEqual(logged.find((l) => l.level === "warn")?.fields, { settings: ["auth"] });
      assert.equal(applied.length, 1);
    } finally {
      watcher.close();
    }
  });

  it("reads accepted JWT secrets as a list, and never quotes one in a problem", () => {
    const a = "the first signing key: 32 characters or more";
    const b = "the second signing key: 32 characters or more";
    const settings = readSettings({ KEEL_JWT_ACCEPTED_SECRETS: `${a}, ${b}` }).settings;
    assert.deepEqual(settings.auth.acceptedJwtSecrets, [a, b]);
    assert.deepEqual(readSettings({}).settings.auth.acceptedJwtSecrets, []);
    assert.throws(() => readSettings({ KEEL_JWT_ACCEPTED_SECRETS: `${a},hunter2` }), {
      message:
        "invalid configuration: KEEL_JWT_ACCEPTED_SECRETS: the value must be at least 32 characters",
    });
  });

  it("reads a remote UserService's TLS files, and refuses a certificate without its key", () => {
    const tls = readSettings({
      KEEL_USER_SERVICE_URL: "https://users.internal:9090",
      KEEL_USER_SERVICE_CA: "/etc/keel/ca.pem",
      KEEL_USER_SERVICE_CERT: "/etc/keel/client.pem",
      KEEL_USER_SERVICE_KEY: "/etc/keel/client-key.pem",
    }).settings.userServiceTls;
    assert.deepEqual(tls, {
      ca: "/etc/keel/ca.pem",
      cert: "/etc/keel/client.pem",
      key: "/etc/keel/client-key.pem",
    });
    assert.throws(
      () => readSettings({ KEEL_USER_SERVICE_CERT: "/etc/keel/client.pem" }),
      /userServiceTls: cert and key go together: give both, or neither/,
    );
  });

  it("leaves load shedding and memory limits off by default; reads and checks them", () => {
    const defaults = readSettings({}).settings;
    assert.equal(defaults.loadShedding.enabled, false);
    assert.deepEqual(defaults.memoryLimits, {
      heapSoftBytes: 0,
      heapHardBytes: 0,
      rssSoftBytes: 0,
      rssHardBytes: 0,
    });
    const path = file(`
loadShedding: { enabled: true, eventLoopDelayMs: 80, healthNotServing: true }
memoryLimits: { rssSoftBytes: 800000000, rssHardBytes: 900000000 }
`);
    const { settings } = readSettings({
      KEEL_CONFIG: path,
      KEEL_LOAD_SHEDDING_EVENT_LOOP_UTILIZATION: "0.8",
      KEEL_LOAD_SHEDDING_RETRY_AFTER_MS: "2000",
    });
    assert.deepEqual(settings.loadShedding, {
      enabled: true,
      eventLoopDelayMs: 80,
      eventLoopUtilization: 0.8,
      overloadForMs: 500,
      recoverForMs: 2000,
      retryAfterMs: 2000,
      healthNotServing: true,
      sampleIntervalMs: 100,
    });
    assert.equal(settings.memoryLimits.rssHardBytes, 900_000_000);
    assert.throws(
      () =>
        readSettings({
          KEEL_MEMORY_HEAP_SOFT_LIMIT_BYTES: "2000",
          KEEL_MEMORY_HEAP_HARD_LIMIT_BYTES: "1000",
        }),
      /memoryLimits: heapSoftBytes must be below heapHardBytes/,
    );
    assert.throws(
      () => readSettings({ KEEL_LOAD_SHEDDING_EVENT_LOOP_UTILIZATION: "1.5" }),
      /KEEL_LOAD_SHEDDING_EVENT_LOOP_UTILIZATION/,
    );
    assert.throws(
      () =>
        readSettings({
          KEEL_LOAD_SHEDDING_EVENT_LOOP_UTILIZATION: "0",
          KEEL_LOAD_SHEDDING_EVENT_LOOP_DELAY_MS: "0",
        }),
      /cannot both be 0/,
    );
    assert.throws(() => readSettings({ KEEL_LOAD_SHEDDING: "maybe" }), /KEEL_LOAD_SHEDDING: /);
  });
});

describe("request bodies", () => {
  it("holds 16 MiB per connection, 256 MiB per process, 30 s idle by default; each can be set", () => {
    assert.deepEqual(readSettings({}).settings.requestBodies, {
      bufferedBytesPerConnection: 16 * 1024 * 1024,
      bufferedBytesPerProcess: 256 * 1024 * 1024,
      idleTimeoutMs: 30_000,
    });
    const { settings } = readSettings({
      KEEL_REQUEST_BUFFER_PER_CONNECTION_BYTES: "1048576",
      KEEL_REQUEST_BUFFER_PER_PROCESS_BYTES: "67108864",
      KEEL_REQUEST_BODY_IDLE_TIMEOUT_MS: "5000",
    });
    assert.deepEqual(settings.requestBodies, {
      bufferedBytesPerConnection: 1048576,
      bufferedBytesPerProcess: 67108864,
      idleTimeoutMs: 5000,
    });
    assert.throws(
      () =>
        readSettings({
          KEEL_REQUEST_BUFFER_PER_CONNECTION_BYTES: "2000000",
          KEEL_REQUEST_BUFFER_PER_PROCESS_BYTES: "1000000",
        }),
      /requestBodies: bufferedBytesPerConnection must not be larger than bufferedBytesPerProcess/,
    );
    assert.throws(
      () => readSettings({ KEEL_REQUEST_BODY_IDLE_TIMEOUT_MS: "0" }),
      /KEEL_REQUEST_BODY_IDLE_TIMEOUT_MS/,
    );
  });
});

describe("load reports and the UserService address", () => {
  it("sends load reports every second by default; both can be set", () => {
    assert.deepEqual(readSettings({}).settings.loadReports, { enabled: true, intervalMs: 1000 });
    assert.deepEqual(
      readSettings({ KEEL_LOAD_REPORTS: "false", KEEL_LOAD_REPORT_INTERVAL_MS: "250" }).settings
        .loadReports,
      { enabled: false, intervalMs: 250 },
    );
    assert.throws(
      () => readSettings({ KEEL_LOAD_REPORT_INTERVAL_MS: "10" }),
      /KEEL_LOAD_REPORT_INTERVAL_MS/,
    );
  });

  it("takes a URL or a DNS target for UserService, and says what else it could be", () => {
    for (const url of [
      "http://users.internal:9090",
      "https://10.0.0.1:9090",
      "dns:///users.internal:9090",
      "dns://10.0.0.2:53/users.internal:9090",
    ]) {
      assert.equal(readSettings({ KEEL_USER_SERVICE_URL: url }).settings.userServiceUrl, url);
    }
    for (const url of ["users.internal:9090", "dns:///users.internal", "ftp://x:1"]) {
      assert.throws(
        () => readSettings({ KEEL_USER_SERVICE_URL: url }),
        /KEEL_USER_SERVICE_URL: .*must be an http:\/\/ or https:\/\/ URL, or dns:\/\/\/host:port/,
        url,
      );
    }
  });
});
