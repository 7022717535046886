import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
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
    const { accessToken } = await client.login({
      username: "persistent",
      password: "long enough password",
    });
    process.kill(first.child.pid as number, "SIGTERM");
    assert.equal((await first.exited).code, 0);

    const second = runServer(env);
    // The token issued before the restart still verifies: the development secret was kept.
    const again = createUserClient({ baseUrl: await servingUrl(second), token: accessToken });
    const { user: found } = await again.getUser({ userId: user.userId });
    assert.deepEqual(found, user);
    process.kill(second.child.pid as number, "SIGINT");
    assert.equal((await second.exited).code, 0);
  });

  it("mints development tokens, grants roles, and audits what changes state", async () => {
    const env = { KEEL_DATA_DIR: dataDir, KEEL_PASSWORD_COST: "10" };
    const server = runServer(env);
    const url = await servingUrl(server);
    const anonymous = createUserClient({ baseUrl: url });
    await anonymous.createUser({
      username: "boss",
      email: "boss@example.com",
      password: "long enough password",
    });
    const minted = await runServer(env, ["token", "--user-id", "1", "--roles", "admin"]).exited;
    assert.equal(minted.code, 0, minted.stderr);
    const admin = createUserClient({ baseUrl: url, token: minted.stdout.trim() });
    assert.ok((await admin.listUsers({})).users.length >= 1);

    const granted = await runServer(env, [
      "grant",
      "--username",
      "boss",
      "--roles",
      "admin,fulfillment",
    ]).exited;
    assert.equal(granted.code, 0, granted.stderr);
    assert.match(granted.stdout, /now has roles: admin, fulfillment/);
    const { accessToken } = await anonymous.login({
      username: "boss",
      password: "long enough password",
    });
    await createUserClient({ baseUrl: url, token: accessToken }).listUsers({});
    await assert.rejects(anonymous.login({ username: "boss", password: "wrong password!" }));

    process.kill(server.child.pid as number, "SIGTERM");
    assert.equal((await server.exited).code, 0);
    // The audit log was flushed on the way out: one line per audited call, no secrets.
    const audit = readFileSync(join(dataDir, "audit.log"), "utf8");
    const lines = audit
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { method: string; outcome: string });
    const boss = lines.filter((l) => /CreateUser|Login/.test(l.method)).slice(-3);
    assert.deepEqual(
      boss.map((l) => [l.method, l.outcome]),
      [
        ["user.v1.UserService/CreateUser", "OK"],
        ["user.v1.UserService/Login", "OK"],
        ["user.v1.UserService/Login", "Unauthenticated"],
      ],
    );
    assert.doesNotMatch(audit, /long enough password|wrong password|eyJ/);

    const bad = await runServer(env, ["token", "--user", "1"]).exited;
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Unknown option '--user'[\s\S]*usage: keel-server/);
    const unknown = await runServer(env, ["frobnicate"]).exited;
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
  });

  it("grant adds roles, revoke takes them, and both refuse a role no policy names", async () => {
    const dir = mkdtempSync(join(tmpdir(), "keel-roles-"));
    try {
      const env = { KEEL_DATA_DIR: dir, KEEL_PASSWORD_COST: "10" };
      const server = runServer(env);
      await createUserClient({ baseUrl: await servingUrl(server) }).createUser({
        username: "ada",
        email: "ada@example.com",
        password: "long enough password",
      });
      const roles = async (...args: string[]) => {
        const result = await runServer(env, [...args, "--username", "ada"]).exited;
        return `${result.code} ${result.stdout}${result.stderr.split("\n")[0]}`;
      };
      assert.equal(
        await roles("grant", "--roles", "admin"),
        "0 user 1 (ada) now has roles: admin\n",
      );
      assert.equal(
        await roles("grant", "--roles", "fulfillment,admin"),
        "0 user 1 (ada) now has roles: admin, fulfillment\n",
      );
      assert.equal(
        await roles("revoke", "--roles", "admin"),
        "0 user 1 (ada) now has roles: fulfillment\n",
      );
      assert.equal(
        await roles("grant", "--roles", "admin,superuser"),
        '2 keel-server: unknown role "superuser": the services\' policies name admin, fulfillment',
      );
      assert.equal(
        await roles("revoke", "--roles", "fulfillment"),
        "0 user 1 (ada) now has roles: (none)\n",
      );
      process.kill(server.child.pid as number, "SIGTERM");
      assert.equal((await server.exited).code, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("prints each command's usage with --help or -h, reading no configuration", async () => {
    const commands = ["serve", "token", "grant", "revoke", "certs", "connection"];
    for (const command of commands) {
      const flag = command === "certs" ? "-h" : "--help";
      // A bad setting does not matter: help reads none.
      const result = await runServer({ KEEL_PORT: "bad" }, [command, flag]).exited;
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`^usage: keel-server ${command}\\b.*\\n\\n\\S`));
    }
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
    assert.match(production.stderr, /KEEL_JWT_SECRET \(auth.jwtSecret\): required/);
  });
});
