import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createUserClient } from "@keel/clients";
import { runServer, servingUrl } from "./testing/process.ts";

const dataDir = mkdtempSync(join(tmpdir(), "keel-main-"));
after(() => rmSync(dataDir, { recursive: true, force: true }));

describe("the server process", () => {
  it("serves, stops cleanly on SIGTERM and keeps its data across a restart", async () => {
    const env = { KEEL_DATA_DIR: dataDir, KEEL_PASSWORD_COST: "10" };
    const first = runServer(env);
    const client = createUserClient({ baseUrl: await servingUrl(first) });
    const { user } = await client.createUser({
      username: "persistent",
      email: "persistent@example.com",
      password: "long enough password",
    });
    assert.ok(user);
    process.kill(first.child.pid as number, "SIGTERM");
    assert.equal((await first.exited).code, 0);

    const second = runServer(env);
    const again = createUserClient({ baseUrl: await servingUrl(second) });
    const { user: found } = await again.getUser({ userId: user.userId });
    assert.deepEqual(found, user);
    // Tokens signed before the restart still verify: the development secret was kept.
    const login = await again.login({ username: "persistent", password: "long enough password" });
    assert.ok(login.accessToken);
    process.kill(second.child.pid as number, "SIGINT");
    assert.equal((await second.exited).code, 0);
  });

  it("exits with code 2 and names the setting when the configuration is bad", async () => {
    const badPort = await runServer({ KEEL_DATA_DIR: dataDir, KEEL_PORT: "ninety" }).exited;
    assert.equal(badPort.code, 2);
    assert.match(badPort.stderr, /KEEL_PORT/);
    const unknown = await runServer({ KEEL_DATA_DIR: dataDir, KEEL_PROT: "9090" }).exited;
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown setting KEEL_PROT/);
    const production = await runServer({ KEEL_DATA_DIR: dataDir, NODE_ENV: "production" }).exited;
    assert.equal(production.code, 2);
    assert.match(production.stderr, /KEEL_JWT_SECRET: required/);
  });
});
