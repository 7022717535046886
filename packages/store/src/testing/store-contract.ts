import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { UserStatus } from "@keel/gen/user/v1/user_pb";
import { StoreError } from "../store-error.ts";
import type { NewUser, Store } from "../types.ts";
import { apiKeyContract } from "./api-key-contract.ts";
import { orderContract } from "./order-contract.ts";

/** What a contract test may ask of the store it opens. */
export interface ContractStoreOptions {
  /** Receives the SQL of every statement the store runs (see the stores' `onQuery`). */
  onQuery?: (sql: string) => void;
}

/**
 * The behaviour every Store must have. Each implementation's test calls this with a factory that
 * opens a fresh, empty store.
 */
export function storeContract(
  name: string,
  open: (options?: ContractStoreOptions) => Promise<Store>,
  options: { skip?: string } = {},
): void {
  orderContract(name, open, options);
  apiKeyContract(name, open, options);
  describe(`${name} store contract`, { skip: options.skip ?? false }, () => {
    let n = 0;
    const newUser = (overrides: Partial<NewUser> = {}): NewUser => {
      n++;
      return {
        username: `user${n}`,
        email: `user${n}@example.com`,
        status: UserStatus.ACTIVE,
        tags: ["a", "b"],
        passwordHash: "hash",
        ...overrides,
      };
    };
    const withStore = async (body: (store: Store) => Promise<void>) => {
      const store = await open();
      try {
        await body(store);
      } finally {
        await store.close();
      }
    };

    it("creates users with increasing ids and reads them back", () =>
      withStore(async (store) => {
        const a = await store.users.create(newUser({ tags: ["x"] }));
        const b = await store.users.create(newUser());
        assert.ok(a.id > 0n && b.id > a.id);
        assert.deepEqual(await store.users.get(a.id), a);
        assert.deepEqual(a.tags, ["x"]);
        assert.deepEqual(a.metadata, {});
        assert.equal(a.status, UserStatus.ACTIVE);
        assert.equal(await store.users.get(b.id + 100n), undefined);
        const creds = await store.users.findCredentials(a.username.toUpperCase());
        assert.equal(creds?.user.id, a.id);
        assert.equal(creds?.passwordHash, "hash");
      }));

    it("refuses text with a NUL character as invalid_argument, storing nothing", () =>
      withStore(async (store) => {
        const invalid = (err: unknown) =>
          err instanceof StoreError && err.kind === "invalid_argument";
        await assert.rejects(store.users.create(newUser({ username: "nul\0name" })), invalid);
        await assert.rejects(store.users.create(newUser({ tags: ["ok", "b\0d"] })), invalid);
        assert.deepEqual(await store.users.list({ limit: 10 }), []);
        const user = await store.users.create(newUser());
        await assert.rejects(store.users.update(user.id, { email: "a\0@example.com" }), invalid);
        await assert.rejects(store.users.update(user.id, { metadata: { "k\0": "v" } }), invalid);
        await assert.rejects(store.users.update(user.id, { metadata: { k: "v\0" } }), invalid);
        assert.deepEqual(await store.users.get(user.id), user);
        await assert.rejects(store.activities.record(user.id, "a\0", {}), invalid);
        const { order } = await store.orders.create({
          userId: user.id,
          currency: "EUR",
          items: [{ sku: "S", name: "Sock", quantity: 1, unitPriceMinor: 1n }],
        });
        await assert.rejects(
          store.orders.create({
            userId: user.id,
            currency: "EUR",
            items: [{ sku: "S", name: "So\0ck", quantity: 1, unitPriceMinor: 1n }],
          }),
          invalid,
        );
        await assert.rejects(store.orders.cancel(order.id, "why\0"), invalid);
        assert.deepEqual(
          (await store.orders.list({ userId: user.id, limit: 10 })).map((o) => o.status),
          [order.status],
        );
      }));

    it("keeps a user's roles", () =>
      withStore(async (store) => {
        const user = await store.users.create(newUser());
        assert.deepEqual(user.roles, []);
        const admin = await store.users.setRoles(user.id, ["admin", "fulfillment"]);
        assert.deepEqual(admin.roles, ["admin", "fulfillment"]);
        assert.deepEqual((await store.users.findCredentials(user.username))?.user.roles, [
          "admin",
          "fulfillment",
        ]);
        await assert.rejects(
          store.users.setRoles(user.id + 999n, ["admin"]),
          (err: unknown) => err instanceof StoreError && err.kind === "not_found",
        );
      }));

    it("refuses a username or email taken in any letter case, naming the field", () =>
      withStore(async (store) => {
        const a = await store.users.create(newUser());
        await assert.rejects(
          store.users.create(newUser({ username: a.username.toUpperCase() })),
          (err: unknown) =>
            err instanceof StoreError && err.kind === "already_exists" && err.field === "username",
        );
        await assert.rejects(
          store.users.create(newUser({ email: a.email.toUpperCase() })),
          (err: unknown) =>
            err instanceof StoreError && err.kind === "already_exists" && err.field === "email",
        );
      }));

    it("tells whether a username or email is taken before a create, naming the field", () =>
      withStore(async (store) => {
        const a = await store.users.create(newUser());
        await store.users.checkAvailable(`${a.username}x`, `x${a.email}`);
        const cases: [string, string, string][] = [
          [a.username.toUpperCase(), `other-${a.email}`, "username"],
          [`${a.username}x`, a.email.toUpperCase(), "email"],
          // Both taken: the username is named.
          [a.username, a.email, "username"],
        ];
        for (const [username, email, field] of cases) {
          await assert.rejects(
            store.users.checkAvailable(username, email),
            (err: unknown) =>
              err instanceof StoreError &&
              err.kind === "already_exists" &&
              err.field === field &&
              err.message === `${field} is already taken`,
          );
        }
      }));

    it("lists users in id order by keyset, filtered by status", () =>
      withStore(async (store) => {
        const ids: bigint[] = [];
        for (let i = 0; i < 5; i++) {
          const status = i % 2 === 0 ? UserStatus.ACTIVE : UserStatus.SUSPENDED;
          ids.push((await store.users.create(newUser({ status }))).id);
        }
        const page1 = await store.users.list({ limit: 2 });
        assert.deepEqual(
          page1.map((u) => u.id),
          ids.slice(0, 2),
        );
        const page2 = await store.users.list({ limit: 10, afterId: ids[1] as bigint });
        assert.deepEqual(
          page2.map((u) => u.id),
          ids.slice(2),
        );
        const suspended = await store.users.list({ limit: 10, status: UserStatus.SUSPENDED });
        assert.deepEqual(
          suspended.map((u) => u.id),
          [ids[1], ids[3]],
        );
      }));

    it("updates users, recording activities and announcing status changes", () =>
      withStore(async (store) => {
        const user = await store.users.create(newUser());
        const follower = store.events.statuses({ origin: "follower" });
        follower.follow(user.id);
        const activities = store.events.activities(user.id, {});
        const updated = await store.users.update(
          user.id,
          { email: "new@example.com", status: UserStatus.SUSPENDED, metadata: { k: "v" } },
          "someone-else",
        );
        assert.equal(updated.email, "new@example.com");
        assert.equal(updated.status, UserStatus.SUSPENDED);
        assert.deepEqual(updated.metadata, { k: "v" });
        assert.ok(updated.updatedAt >= user.updatedAt);
        // A live feed may still deliver events committed just before it subscribed (the
        // PostgreSQL bus is asynchronous): readers skip what they already know by id.
        const created = (await store.activities.list(user.id, { limit: 1 }))[0];
        const fresh = async () => {
          for (;;) {
            const next = await activities.next();
            if ((next.value?.id ?? 0n) > (created?.id ?? 0n)) return next.value;
          }
        };
        const first = await fresh();
        const second = await fresh();
        assert.equal(first?.action, "user.updated");
        assert.deepEqual(first?.details, { fields: "email,metadata" });
        assert.equal(second?.action, "user.status_changed");
        assert.deepEqual(second?.details, {
          from: "USER_STATUS_ACTIVE",
          to: "USER_STATUS_SUSPENDED",
        });
        const event = await follower.next();
        assert.equal(event.value?.userId, user.id);
        assert.equal(event.value?.status, UserStatus.SUSPENDED);
        // A change by the follower itself is not echoed back to it.
        await store.users.update(user.id, { status: UserStatus.ACTIVE }, "follower");
        await store.users.update(user.id, { status: UserStatus.INACTIVE }, "someone-else");
        assert.equal((await follower.next()).value?.status, UserStatus.INACTIVE);
        follower.close();
        activities.close();
        // An update that changes nothing records nothing.
        const before = await store.activities.list(user.id, { limit: 100 });
        await store.users.update(user.id, { email: "new@example.com" });
        assert.equal((await store.activities.list(user.id, { limit: 100 })).length, before.length);
      }));

    it("refuses an update to a missing user or onto a taken email", () =>
      withStore(async (store) => {
        const a = await store.users.create(newUser());
        const b = await store.users.create(newUser());
        await assert.rejects(
          store.users.update(b.id + 1000n, { email: "x@example.com" }),
          (err: unknown) => err instanceof StoreError && err.kind === "not_found",
        );
        await assert.rejects(
          store.users.update(b.id, { email: a.email }),
          (err: unknown) => err instanceof StoreError && err.field === "email",
        );
        assert.equal((await store.users.get(b.id))?.email, b.email);
      }));

    it("lists activities since a time and after an id", () =>
      withStore(async (store) => {
        const user = await store.users.create(newUser());
        const login = await store.activities.record(user.id, "user.login", { method: "password" });
        const all = await store.activities.list(user.id, { limit: 10 });
        assert.deepEqual(
          all.map((a) => a.action),
          ["user.created", "user.login"],
        );
        assert.deepEqual(await store.activities.list(user.id, { limit: 10, afterId: all[0]?.id }), [
          login,
        ]);
        const future = new Date(Date.now() + 60_000);
        assert.deepEqual(await store.activities.list(user.id, { limit: 10, since: future }), []);
      }));

    it("rotates a refresh token once and revokes its family when it is reused", () =>
      withStore(async (store) => {
        const user = await store.users.create(newUser());
        const familyId = randomUUID();
        const expiresAt = new Date(Date.now() + 60_000);
        const token = (jti: string) => ({ jti, familyId, userId: user.id, expiresAt });
        await store.refreshTokens.create(token("t1"));
        const now = new Date();
        assert.equal(await store.refreshTokens.familyActive(familyId, now), true);
        assert.deepEqual(await store.refreshTokens.rotate("t1", token("t2"), now), {
          kind: "rotated",
          userId: user.id,
        });
        assert.equal(await store.refreshTokens.familyActive(familyId, now), true, "t2 lives on");
        assert.equal(await store.refreshTokens.familyActive(familyId, expiresAt), false, "expired");
        assert.deepEqual(await store.refreshTokens.rotate("t1", token("t3"), now), {
          kind: "reused",
          userId: user.id,
        });
        assert.equal(await store.refreshTokens.familyActive(familyId, now), false, "revoked");
        assert.equal(await store.refreshTokens.familyActive(randomUUID(), now), false, "unknown");
        // The reuse revoked t2 as well: the family is dead.
        assert.deepEqual(await store.refreshTokens.rotate("t2", token("t4"), now), {
          kind: "reused",
          userId: user.id,
        });
        assert.deepEqual(await store.refreshTokens.rotate("nope", token("t5"), now), {
          kind: "invalid",
        });
        await store.refreshTokens.create({
          ...token("old"),
          expiresAt: new Date(Date.now() - 1000),
        });
        assert.deepEqual(await store.refreshTokens.rotate("old", token("t6"), new Date()), {
          kind: "invalid",
        });
      }));

    it("cuts off a subscriber that falls behind instead of buffering without bound", () =>
      withStore(async (store) => {
        const user = await store.users.create(newUser());
        const slow = store.events.activities(user.id, { bufferSize: 2 });
        for (let i = 0; i < 3; i++) await store.activities.record(user.id, "user.login", {});
        // Events may still be on their way (PostgreSQL delivers them asynchronously).
        for (let waited = 0; !slow.isClosed && waited < 5000; waited += 10) await sleep(10);
        await assert.rejects(
          slow.next(),
          (err: unknown) => err instanceof StoreError && err.kind === "overflow",
        );
      }));

    it("ends subscriptions when their signal aborts and fails calls after close", async () => {
      const store = await open();
      const user = await store.users.create(newUser());
      const controller = new AbortController();
      const subscription = store.events.activities(user.id, { signal: controller.signal });
      const pending = subscription.next();
      controller.abort();
      assert.deepEqual(await pending, { value: undefined, done: true });
      await store.ping();
      await store.close();
      await assert.rejects(
        store.ping(),
        (err: unknown) => err instanceof StoreError && err.kind === "unavailable",
      );
    });
  });
}
