import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UserStatus } from "@keel/gen/user/v1/user_pb";
import { StoreError } from "../store-error.ts";
import {
  dropSchema,
  freshSchema,
  openTestPostgresStore,
  postgresSkipReason,
  postgresUrl,
} from "../testing/postgres.ts";
import { storeContract } from "../testing/store-contract.ts";
import { openPostgresStore } from "./pg-store.ts";

// Skipped only outside CI when no PostgreSQL is reachable; in CI that is a failure.
const skip = await postgresSkipReason();

storeContract(
  "postgres",
  (options) => openTestPostgresStore(undefined, options),
  skip === undefined ? {} : { skip },
);

describe("postgres store", { skip: skip ?? false }, () => {
  it("migrates once when several instances start together, and shares events between them", async () => {
    const schema = freshSchema();
    const stores = await Promise.all(
      [1, 2, 3].map(() =>
        openPostgresStore({ connectionString: postgresUrl, schema, poolSize: 2 }),
      ),
    );
    try {
      const [a, b] = stores as [(typeof stores)[0], (typeof stores)[0]];
      const user = await a.users.create({
        username: "shared",
        email: "shared@example.com",
        status: UserStatus.ACTIVE,
        tags: [],
        passwordHash: "h",
      });
      // A follower on instance B sees a status change made through instance A.
      const follower = b.events.statuses({ origin: "b" });
      follower.follow(user.id);
      const activities = b.events.activities(user.id, {});
      await a.users.update(user.id, { status: UserStatus.SUSPENDED }, "a");
      assert.equal((await follower.next()).value?.status, UserStatus.SUSPENDED);
      let action: string | undefined;
      do action = (await activities.next()).value?.action;
      while (action === "user.created");
      assert.equal(action, "user.status_changed");
      assert.equal((await b.users.get(user.id))?.status, UserStatus.SUSPENDED);
    } finally {
      for (const store of stores) await store.close();
      await dropSchema(schema);
    }
  });

  it("answers concurrent reads in a bounded number of queries", async () => {
    const queries: string[] = [];
    const store = await openTestPostgresStore(undefined, { onQuery: (sql) => queries.push(sql) });
    try {
      const user = await store.users.create({
        username: "reader",
        email: "reader@example.com",
        status: UserStatus.ACTIVE,
        tags: [],
        passwordHash: "h",
      });
      const ids: bigint[] = [];
      for (let i = 0; i < 100; i++) {
        const { order } = await store.orders.create({
          userId: user.id,
          currency: "EUR",
          items: [{ sku: "S", name: "n", quantity: 1, unitPriceMinor: BigInt(i + 1) }],
        });
        ids.push(order.id);
      }
      const count = async (read: () => Promise<unknown>) => {
        queries.length = 0;
        await read();
        return queries.length;
      };
      // Fifty GetUser calls at once: one query.
      const users = await Promise.all(Array.from({ length: 50 }, () => store.users.get(user.id)));
      assert.ok(users.every((u) => u?.username === "reader"));
      assert.equal(await count(() => Promise.all(ids.map(() => store.users.get(user.id)))), 1);
      // A hundred GetOrder calls at once: the orders, their items and their payments.
      const orders = await Promise.all(ids.map((id) => store.orders.get(id)));
      assert.deepEqual(
        orders.map((o) => o?.totalMinor),
        ids.map((_, i) => BigInt(i + 1)),
      );
      assert.equal(await count(() => Promise.all(ids.map((id) => store.orders.get(id)))), 3);
      // A page of 100 orders: the same three, whatever the page size (no query per order).
      const page = await store.orders.list({ userId: user.id, limit: 100 });
      assert.equal(page.length, 100);
      assert.equal(await count(() => store.orders.list({ userId: user.id, limit: 100 })), 3);
      assert.equal(await store.users.get(user.id + 1000n), undefined);
    } finally {
      await store.close();
    }
  });

  it("refuses a bad schema name and reports an unreachable database as unavailable", async () => {
    await assert.rejects(
      openPostgresStore({ connectionString: postgresUrl, schema: "Robert'); DROP TABLE users;--" }),
      /invalid schema name/,
    );
    await assert.rejects(
      openPostgresStore({ connectionString: "postgres://postgres@127.0.0.1:1/none" }),
      (err: unknown) => err instanceof StoreError && err.kind === "unavailable",
    );
  });
});
