import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UserStatus } from "@keel/gen/user/v1/user_pb";
import type { Principal } from "@keel/interceptors";
import type { UserRecord } from "@keel/store";
import { createAccountGuard } from "./account-guard.ts";
import { outcomeOf } from "./testing/rpc.ts";

function setup() {
  const statuses = new Map<bigint, UserStatus>([[1n, UserStatus.ACTIVE]]);
  const reads: bigint[] = [];
  const sessionReads: string[] = [];
  const revoked = new Set<string>();
  let t = 0;
  let failing = false;
  const guard = createAccountGuard({
    issuer: "keel",
    maxAgeMs: 1000,
    maxEntries: 2,
    now: () => t,
    user: async (id) => {
      reads.push(id);
      if (failing) throw new Error("database down");
      const status = statuses.get(id);
      return status === undefined ? undefined : ({ id, status } as UserRecord);
    },
    session: async (sid) => {
      sessionReads.push(sid);
      return !revoked.has(sid);
    },
  });
  return {
    guard,
    statuses,
    reads,
    sessionReads,
    revoked,
    advance: (ms: number) => {
      t += ms;
    },
    fail: (on: boolean) => {
      failing = on;
    },
  };
}

const login = (userId: bigint, issuer = "keel"): Principal => ({
  subject: String(userId),
  userId,
  roles: [],
  tokenId: undefined,
  issuer,
  sessionId: "s",
});

describe("account guard", () => {
  it("reads a status once per maxAge, answering from memory in between without a promise", async () => {
    const { guard, statuses, reads, advance } = setup();
    assert.equal(await outcomeOf(guard.check(login(1n))), "ok");
    assert.equal(guard.check(login(1n)), undefined);
    statuses.set(1n, UserStatus.SUSPENDED);
    advance(999);
    assert.equal(guard.check(login(1n)), undefined, "still within maxAge");
    advance(1);
    assert.equal(
      await outcomeOf(guard.check(login(1n))),
      "PermissionDenied: this account is suspended; contact an administrator",
    );
    assert.deepEqual(reads, [1n, 1n]);
  });

  it("reads again at once after forget, and shares one read between concurrent calls", async () => {
    const { guard, statuses, reads } = setup();
    await guard.check(login(1n));
    statuses.set(1n, UserStatus.SUSPENDED);
    guard.forget(1n);
    const both = await Promise.all([
      outcomeOf(guard.check(login(1n))),
      outcomeOf(guard.check(login(1n))),
    ]);
    assert.deepEqual(
      both.map((v) => v.split(":")[0]),
      ["PermissionDenied", "PermissionDenied"],
    );
    assert.deepEqual(reads, [1n, 1n]);
  });

  it("refuses a login's token for a user that is gone, but not an operator's token", async () => {
    const { guard } = setup();
    assert.equal(
      await outcomeOf(guard.check(login(7n))),
      "Unauthenticated: the account of this token (user 7) no longer exists; log in again",
    );
    const minted = { ...login(7n), sessionId: undefined };
    assert.equal(await outcomeOf(guard.check(minted)), "ok");
  });

  it("does not check tokens of other issuers or subjects that are not user ids", async () => {
    const { guard, reads } = setup();
    assert.equal(guard.check(login(7n, "https://idp.example.com")), undefined);
    assert.equal(guard.check({ ...login(1n), userId: undefined, subject: "ops-bot" }), undefined);
    assert.deepEqual(reads, []);
  });

  it("answers UNAVAILABLE when the store cannot be read, and reads again on the next call", async () => {
    const { guard, fail, reads } = setup();
    fail(true);
    assert.equal(
      await outcomeOf(guard.check(login(1n))),
      "Unavailable: cannot check the account's status right now; retry shortly",
    );
    fail(false);
    assert.equal(await outcomeOf(guard.check(login(1n))), "ok");
    assert.deepEqual(reads, [1n, 1n]);
  });

  it("remembers at most maxEntries users, forgetting the least recently read", async () => {
    const { guard, statuses, reads } = setup();
    statuses.set(2n, UserStatus.ACTIVE);
    statuses.set(3n, UserStatus.ACTIVE);
    for (const id of [1n, 2n, 3n]) await guard.check(login(id));
    assert.equal(guard.check(login(3n)), undefined);
    assert.equal(guard.check(login(2n)), undefined);
    assert.notEqual(guard.check(login(1n)), undefined, "user 1 was forgotten");
    assert.deepEqual(reads, [1n, 2n, 3n, 1n]);
  });

  it("refuses the tokens of a revoked login, read like a status and forgotten at once", async () => {
    const { guard, revoked, sessionReads, advance } = setup();
    assert.equal(await outcomeOf(guard.check(login(1n))), "ok");
    assert.equal(guard.check(login(1n)), undefined);
    revoked.add("s");
    assert.equal(guard.check(login(1n)), undefined, "within maxAge");
    guard.forgetSession("s");
    assert.equal(
      await outcomeOf(guard.check(login(1n))),
      "Unauthenticated: this login was revoked (its refresh token was used twice, or it expired); log in again",
    );
    // Another instance learns it once maxAge has passed.
    const other = setup();
    await other.guard.check(login(1n));
    other.revoked.add("s");
    other.advance(1000);
    assert.match(
      await outcomeOf(other.guard.check(login(1n))),
      /^Unauthenticated: this login was revoked/,
    );
    assert.deepEqual(sessionReads, ["s", "s"]);
    advance(0);
  });
});
