import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createUserClient } from "@keel/clients";
import { runCli } from "./testing/run-cli.ts";
import { type ServerProcess, startServerProcess } from "./testing/server-process.ts";

describe("keel token", () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServerProcess();
  });

  it("prints a JWT that the server accepts, with the roles asked for", async () => {
    const users = createUserClient({ baseUrl: server.url });
    const { user } = await users.createUser({
      username: "token-user",
      email: "token-user@example.com",
      password: "correct horse battery",
    });
    const userId = user?.userId ?? 0n;
    const [plain, admin] = await Promise.all([
      runCli(["token", "--user-id", String(userId)], server.env),
      runCli(["token", "--user-id", String(userId), "--roles", "admin", "--ttl", "60"], server.env),
    ]);
    for (const result of [plain, admin]) {
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    }
    const asUser = createUserClient({ baseUrl: server.url, token: plain.stdout.trim() });
    assert.equal((await asUser.getUser({ userId })).user?.username, "token-user");
    // Without a role, listing users is refused; with admin, it works.
    await assert.rejects(asUser.listUsers({}), (err) => {
      return ConnectError.from(err).code === Code.PermissionDenied;
    });
    const asAdmin = createUserClient({ baseUrl: server.url, token: admin.stdout.trim() });
    assert.ok((await asAdmin.listUsers({})).users.length >= 1);
  });

  it("refuses a token signed with another key", async () => {
    const other = await runCli(["token", "--user-id", "1"], {
      ...server.env,
      KEEL_JWT_SECRET: "another-secret-another-secret-another-secret",
    });
    assert.equal(other.code, 0, other.stderr);
    const users = createUserClient({ baseUrl: server.url, token: other.stdout.trim() });
    await assert.rejects(users.getUser({ userId: 1n }), (err) => {
      return ConnectError.from(err).code === Code.Unauthenticated;
    });
  });

  it("exits 2 on a bad role, naming it", async () => {
    const result = await runCli(["token", "--user-id", "1", "--roles", "Admin!"], server.env);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^keel: token: invalid role "Admin!"\n/);
  });
});
