import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { environment, otherVariables, readSettings } from "./config.ts";
import { startTestServer } from "./testing/test-server.ts";

// The README's examples, run against a real server, so that the README cannot rot.
const root = fileURLToPath(new URL("../../../", import.meta.url));
const readme = readFileSync(join(root, "README.md"), "utf8");
const run = promisify(execFile);

/** The fenced code block of `language` that follows `heading`. */
function block(heading: string, language: string): string {
  const start = readme.indexOf(heading);
  assert.ok(start >= 0, `README has no "${heading}"`);
  const fence = "`".repeat(3);
  const match = new RegExp(`${fence}${language}\\n([\\s\\S]*?)${fence}`).exec(readme.slice(start));
  assert.ok(match?.[1], `no ${language} block after "${heading}"`);
  return match[1];
}

let server: Awaited<ReturnType<typeof startTestServer>>;
// Each example starts from an empty database.
beforeEach(async () => {
  server = await startTestServer();
});
afterEach(() => server.stop());

describe("README", () => {
  it("configuration file example is valid", () => {
    const dir = mkdtempSync(join(tmpdir(), "keel-readme-config-"));
    try {
      const path = join(dir, "keel.yaml");
      writeFileSync(path, block("### Configuration file", "yaml"));
      const { settings } = readSettings({ KEEL_CONFIG: path });
      assert.equal(settings.rateLimits.methods["order.v1.OrderService/CreateOrder"]?.burst, 10);
      assert.equal(settings.shutdown.delayMs, 5000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("OpenID Connect and key rotation examples are valid settings", () => {
    const dir = mkdtempSync(join(tmpdir(), "keel-readme-auth-"));
    try {
      const path = join(dir, "keel.yaml");
      writeFileSync(path, block("### OpenID Connect", "yaml"));
      const { oidc } = readSettings({ KEEL_CONFIG: path }).settings.auth;
      assert.equal(oidc?.rolesClaim, "realm_access.roles");
      assert.deepEqual(oidc?.roleMapping, { "shop-admin": "admin", warehouse: "fulfillment" });
      writeFileSync(path, block("### Rotating the JWT signing key", "yaml"));
      assert.equal(readSettings({ KEEL_CONFIG: path }).settings.auth.acceptedJwtSecrets.length, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("load shedding example is valid", () => {
    const dir = mkdtempSync(join(tmpdir(), "keel-readme-shedding-"));
    try {
      const path = join(dir, "keel.yaml");
      writeFileSync(path, block("### Load shedding and memory limits", "yaml"));
      const { settings } = readSettings({ KEEL_CONFIG: path });
      assert.equal(settings.loadShedding.enabled, true);
      assert.equal(settings.memoryLimits.rssHardBytes, Math.floor(0.9 * 1024 ** 3));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("configuration table names every variable the server and keel read", () => {
    const table = readme.slice(readme.indexOf("| Variable "));
    const rows = table.slice(0, table.indexOf("\n\n")).split("\n");
    const named = new Set(rows.flatMap((row) => row.split("|")[1]?.match(/KEEL_\w+/g) ?? []));
    const missing = [...Object.keys(environment), ...otherVariables].filter((v) => !named.has(v));
    assert.deepEqual(missing, []);
  });

  it("typed client example runs", async () => {
    const dir = join(root, "packages/server/.readme-test");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "example.ts");
    writeFileSync(
      file,
      block("### With the typed client", "ts").replaceAll("http://127.0.0.1:9090", server.url),
    );
    try {
      const { stdout } = await run(process.execPath, ["--conditions=source", file]);
      assert.match(stdout, /username: 'ada'/);
      assert.match(stdout, /email: 'ada@example\.com'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("buf curl and curl examples run", async () => {
    const script = block("### From the command line", "sh")
      .replace("./dev pnpm exec buf", join(root, "node_modules/.bin/buf"))
      .replaceAll("http://127.0.0.1:9090", server.url);
    const { stdout } = await run("bash", ["-e", "-c", script], { cwd: root });
    // CreateUser, then GetUser twice (buf curl, then curl): user 1, ada, each time.
    assert.equal(stdout.match(/"username": ?"ada"/g)?.length, 3, stdout);
    assert.equal(stdout.match(/"userId": ?"1"/g)?.length, 3, stdout);
  });
});
