import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli } from "./testing/run-cli.ts";
import { type ServerProcess, startServerProcess } from "./testing/server-process.ts";

const dir = mkdtempSync(join(tmpdir(), "keel-cli-settings-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("keel and the server read the same settings", () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServerProcess();
  });

  it("calls the server KEEL_PORT or KEEL_CONFIG names when there is no --url", async () => {
    const health = await runCli(["health"], { ...server.env, KEEL_PORT: String(server.port) });
    assert.equal(health.code, 0, health.stderr);
    assert.equal(health.stdout, "SERVING\n");

    const config = join(dir, "keel.yaml");
    writeFileSync(config, `port: ${server.port}\nhost: 127.0.0.1\n`);
    const client = await runCli(["client"], { ...server.env, KEEL_CONFIG: config });
    assert.equal(client.code, 0, client.stderr);
    assert.match(client.stdout, new RegExp(`^walkthrough against ${server.url} \\(grpc\\)\n`));
  });

  it("says why when the server's configuration is bad, naming the setting", async () => {
    const result = await runCli(["health"], { ...server.env, KEEL_PORT: "ninety" });
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /^keel: health: invalid configuration: KEEL_PORT: "ninety" is not a port number/,
    );
  });

  it("never creates a JWT secret: it says which file it looked for", async () => {
    const empty = mkdtempSync(join(dir, "data-"));
    const result = await runCli(["token", "--user-id", "1"], { KEEL_DATA_DIR: empty });
    assert.equal(result.code, 2);
    assert.equal(result.stdout, "");
    assert.match(
      result.stderr,
      new RegExp(
        `^keel: token: no JWT secret: KEEL_JWT_SECRET \\(auth\\.jwtSecret\\) is not set and ${join(empty, "jwt-secret")} does not exist\\.`,
      ),
    );
    assert.equal(existsSync(join(empty, "jwt-secret")), false);
  });
});
