import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { createOrderClient, createUserClient } from "@keel/clients";
import { OrderStatusSchema } from "@keel/gen/order/v1/order_pb";
import { UserStatusSchema } from "@keel/gen/user/v1/user_pb";
import { enumName } from "./enum-name.ts";
import { runCli } from "./testing/run-cli.ts";
import { type ServerProcess, startServerProcess } from "./testing/server-process.ts";

describe("keel seed", () => {
  let server: ServerProcess;
  before(async () => {
    // The server's default limits: the demo data loads on a server as it is started by default.
    server = await startServerProcess({
      KEEL_RATE_LIMIT_RPS: "100",
      KEEL_RATE_LIMIT_BURST: "200",
      KEEL_LOGIN_RATE_LIMIT_PER_MINUTE: "10",
      KEEL_LOGIN_RATE_LIMIT_BURST: "5",
      KEEL_CREATE_USER_RATE_LIMIT_PER_MINUTE: "10",
      KEEL_CREATE_USER_RATE_LIMIT_BURST: "5",
      KEEL_PASSWORD_HASH_PER_CLIENT: "4",
    });
  });

  it("loads users, orders in every status and every kind of activity through the API", async () => {
    const result = await runCli(["seed", "--url", server.url], server.env);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^seeded http:\/\/127\.0\.0\.1:\d+: 4 users, 6 orders\n/);
    assert.match(result.stdout, /frances +\(suspended\) orders: CANCELLED$/m);

    const admin = await runCli(["token", "--user-id", "1", "--roles", "admin"], server.env);
    const token = admin.stdout.trim();
    const users = createUserClient({ baseUrl: server.url, token });
    const orders = createOrderClient({ baseUrl: server.url, token });
    const { users: listed } = await users.listUsers({});
    assert.deepEqual(
      listed.map((u) => [u.username, enumName(UserStatusSchema, u.status)]),
      [
        ["alan", "ACTIVE"],
        ["barbara", "ACTIVE"],
        ["edsger", "ACTIVE"],
        ["frances", "SUSPENDED"],
      ],
    );
    const statuses = new Map<string, string[]>();
    for (const user of listed) {
      const { orders: theirs } = await orders.listOrders({ userId: user.userId });
      statuses.set(user.username, theirs.map((o) => enumName(OrderStatusSchema, o.status)).sort());
    }
    assert.deepEqual(Object.fromEntries(statuses), {
      alan: ["DELIVERED", "PENDING_PAYMENT"],
      barbara: ["CANCELLED", "PAID"],
      edsger: ["SHIPPED"],
      frances: ["CANCELLED"],
    });
    // Every kind of activity: sign-ups, logins, a profile update, a status change. The stream
    // sends the history, then stays open for live ones: each is read up to its user's last.
    const last: Record<string, string> = {
      alan: "user.login",
      barbara: "user.login",
      edsger: "user.updated",
      frances: "user.status_changed",
    };
    const actions = new Set<string>();
    for (const user of listed) {
      for await (const activity of users.streamUserActivities({ userId: user.userId })) {
        actions.add(activity.action);
        if (activity.action === last[user.username]) break;
      }
    }
    assert.deepEqual([...actions].sort(), [
      "user.created",
      "user.login",
      "user.status_changed",
      "user.updated",
    ]);
  });

  it("waits as the server asks when sign-ups and logins from this address are rate limited", async () => {
    // One sign-up and one login at once, then one a second: each demo user waits for the last.
    const limited = await startServerProcess({
      KEEL_CREATE_USER_RATE_LIMIT_PER_MINUTE: "60",
      KEEL_CREATE_USER_RATE_LIMIT_BURST: "1",
      KEEL_LOGIN_RATE_LIMIT_PER_MINUTE: "60",
      KEEL_LOGIN_RATE_LIMIT_BURST: "1",
    });
    // What a newcomer did before: the README's own sign-up takes the burst.
    await createUserClient({ baseUrl: limited.url }).createUser({
      username: "ada",
      email: "ada@example.com",
      password: "correct horse battery",
    });
    const result = await runCli(["seed", "--url", limited.url], limited.env);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^seeded http:\/\/127\.0\.0\.1:\d+: 4 users, 6 orders\n/);
    // Said once, not once per wait.
    assert.match(
      result.stderr,
      /^keel seed: CreateUser alan is rate limited for this address; waiting as the server asks \(\d+\.\d s, and again if needed\)\n$/,
    );
  });

  it("refuses to seed twice, saying why (exit 1)", async () => {
    const again = await runCli(["seed", "--url", server.url], server.env);
    assert.equal(again.code, 1);
    assert.match(
      again.stderr,
      /^keel seed: CreateUser alan failed: \[already_exists\] user "alan" already exists: .*seed a fresh database\n$/,
    );
  });
});
