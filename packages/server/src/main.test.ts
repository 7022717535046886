import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
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

  it("reloads a log level change without asking for a restart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "keel-reload-"));
    try {
      const file = join(dir, "keel.yaml");
      writeFileSync(file, "log: { level: info }\n");
      // Nothing but the file: the data directory and the secret are resolved from defaults.
      const server = runServer({ KEEL_CONFIG: file }, [], dir);
      const entries: { msg?: string; settings?: string[] }[] = [];
      for await (const line of createInterface({ input: server.child.stdout as Readable })) {
        const entry = JSON.parse(line) as { msg?: string; settings?: string[] };
        entries.push(entry);
        if (entry.msg === "serving gRPC, gRPC-Web and Connect") {
          writeFileSync(file, "log: { level: debug }\n");
        }
        if (entry.msg === "configuration reloaded") break;
      }
      process.kill(server.child.pid as number, "SIGTERM");
      await server.exited;
      assert.deepEqual(entries.at(-1)?.settings, ["log"]);
      assert.deepEqual(
        entries.filter((e) => /restart/.test(e.msg ?? "")),
        [],
        "nothing but the log level changed",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("names the setting behind a port in use or a data directory it cannot create", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = String((taken.address() as AddressInfo).port);
    const notAFolder = join(dataDir, "a-file");
    writeFileSync(notAFolder, "");
    try {
      const [api, admin, data] = await Promise.all([
        runServer({ KEEL_DATA_DIR: dataDir, KEEL_PORT: port }).exited,
        runServer({ KEEL_DATA_DIR: dataDir, KEEL_ADMIN_PORT: port }).exited,
        runServer({ KEEL_DATA_DIR: join(notAFolder, "data") }).exited,
      ]);
      assert.equal(api.code, 1);
      assert.match(
        api.stderr,
        new RegExp(
          `^keel-server: KEEL_PORT \\(port\\) = ${port}: the port is in use: stop what listens there, or set another \\(listen EADDRINUSE`,
        ),
      );
      assert.equal(admin.code, 1);
      assert.match(
        admin.stderr,
        new RegExp(`^keel-server: KEEL_ADMIN_PORT \\(adminPort\\) = ${port}: the port is in use`),
      );
      assert.equal(data.code, 1);
      assert.match(
        data.stderr,
        new RegExp(
          `^keel-server: KEEL_DATA_DIR \\(dataDir\\) = "${join(notAFolder, "data")}": a part of the path is not a folder \\(ENOTDIR`,
        ),
      );
    } finally {
      taken.close();
    }
  });

  it("warns once, not once per worker, that it signs with a development secret", async () => {
    const dir = mkdtempSync(join(tmpdir(), "keel-workers-"));
    try {
      const server = runServer({ KEEL_DATA_DIR: dir, KEEL_WORKERS: "2" });
      let serving = 0;
      let warnings = 0;
      for await (const line of createInterface({ input: server.child.stdout as Readable })) {
        const entry = JSON.parse(line) as { msg?: string };
        if (/no JWT secret configured/.test(entry.msg ?? "")) warnings++;
        if (entry.msg === "serving gRPC, gRPC-Web and Connect" && ++serving === 2) break;
      }
      process.kill(server.child.pid as number, "SIGTERM");
      assert.equal((await server.exited).code, 0);
      assert.equal(warnings, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
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
