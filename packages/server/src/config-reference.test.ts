import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { environment, otherVariables } from "./config.ts";
import { settingDescriptions } from "./config-descriptions.ts";
import {
  configurationRows,
  configurationTable,
  generateCommand,
  withConfigurationTable,
} from "./config-reference.ts";

const docPath = new URL("../../../docs/configuration.md", import.meta.url);

describe("the configuration reference", () => {
  it("docs/configuration.md holds the table the schema generates", () => {
    const document = readFileSync(docPath, "utf8");
    assert.equal(
      document,
      withConfigurationTable(document),
      `docs/configuration.md differs from the configuration schema: run ${generateCommand} and commit the result`,
    );
  });

  it("has one row per variable keel reads and per file-only key, each described", () => {
    const rows = configurationRows();
    const variables = rows.flatMap((row) => (row.variable === undefined ? [] : [row.variable]));
    assert.deepEqual(
      [...variables].sort(),
      [...Object.keys(environment), ...otherVariables].sort(),
    );
    assert.deepEqual(
      rows
        .filter((row) => row.variable === undefined)
        .map((row) => row.key)
        .sort(),
      ["auth.oidc.roleMapping", "ipAccess.methods", "rateLimits.methods"],
    );
    // No words are kept for a setting that no longer exists.
    const described = new Set([
      ...variables,
      "auth.oidc.roleMapping",
      "rateLimits.methods",
      "ipAccess.methods",
    ]);
    assert.deepEqual(
      Object.keys(settingDescriptions).filter((name) => !described.has(name)),
      [],
    );
  });

  it("takes defaults, allowed values and live reload from the schema and the reload rules", () => {
    const row = (variable: string) => configurationRows().find((r) => r.variable === variable);
    assert.deepEqual(row("KEEL_PORT"), {
      variable: "KEEL_PORT",
      key: "port",
      default: "`9090`",
      values: "integer 0–65535",
      live: false,
      meaning: "API port: gRPC, gRPC-Web, Connect and REST",
    });
    assert.equal(row("KEEL_RATE_LIMIT_RPS")?.live, true);
    assert.equal(row("KEEL_LOG_LEVEL")?.live, true);
    // Of auth, only the signing keys reload live.
    assert.equal(row("KEEL_JWT_SECRET")?.live, true);
    assert.equal(row("KEEL_JWT_ACCEPTED_SECRETS")?.live, true);
    assert.equal(row("KEEL_JWT_ISSUER")?.live, false);
    assert.equal(row("KEEL_OIDC_ISSUER")?.live, false);
    // In the live group, but the log's destination is made once.
    assert.equal(row("KEEL_LOG_FORMAT")?.live, false);
    assert.equal(row("KEEL_LOG_FORMAT")?.values, "`auto`, `pretty`, `json`");
    assert.equal(row("KEEL_TRACING_SAMPLING_RATIO")?.values, "number 0–1");
    assert.equal(row("KEEL_PROFILING")?.default, "`false`");
    assert.equal(row("KEEL_PROFILING")?.values, "`true` or `false`");
    // Computed at start: the words, not this machine's value.
    assert.equal(row("KEEL_PASSWORD_HASH_CONCURRENCY")?.default, "half the CPUs (≥ 1, ≤ 4)");
  });

  it("refuses a setting without words, naming it and where they go", () => {
    const saved = settingDescriptions.KEEL_PORT;
    delete settingDescriptions.KEEL_PORT;
    try {
      assert.throws(
        () => configurationTable(),
        /^Error: KEEL_PORT has no description: add its meaning to settingDescriptions \(packages\/server\/src\/config-descriptions\.ts\)$/,
      );
    } finally {
      settingDescriptions.KEEL_PORT = saved as NonNullable<typeof saved>;
    }
  });

  it("rewrites only what lies between its markers, and asks for them when they are missing", () => {
    const document = readFileSync(docPath, "utf8");
    const stale = document.replace("| `KEEL_PORT` ", "| `KEEL_PORT_OLD` ");
    assert.notEqual(stale, document);
    assert.equal(withConfigurationTable(stale), document);
    assert.throws(() => withConfigurationTable("# Configuration\n"), /has no generated table/);
  });
});
