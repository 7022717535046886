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
