import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ConnectError } from "@connectrpc/connect";
import { openSqliteStore, type Store } from "@keel/store";
import { createApiKeyVerifier } from "./api-key-verifier.ts";
import { generateApiKey } from "./api-keys.ts";

const secret = new TextEncoder().encode("an API key secret of 32 or more bytes");

/** Whether authenticating `key` throws, and with what message. */
async function refusal(verify: () => unknown): Promise<string | undefined> {
  try {
    await verify();
    return undefined;
  } catch (err) {
    return ConnectError.from(err).rawMessage;
  }
}

describe("API key verifier", () => {
  const dir = mkdtempSync(join(tmpdir(), "keel-api-key-verifier-"));
  let store: Store;
  before(() => {
    store = openSqliteStore({ path: join(dir, "keel.db") });
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A stored key, and a verifier on a clock the test moves, counting reads and touches. */
  async function setup(roles = ["fulfillment"]) {
    const made = generateApiKey(secret);
    await store.apiKeys.create({
      id: made.id,
      name: "robot",
      roles,
      hash: made.hash,
      createdAt: new Date(),
      createdBy: "1",
      expiresAt: undefined,
    });
    const clock = { t: 0 };
    const counts = { reads: 0, touches: 0 };
    const verifier = createApiKeyVerifier({
      keys: {
        get: (id) => {
          counts.reads++;
          return store.apiKeys.get(id);
        },
        touch: (id, at) => {
          counts.touches++;
          return store.apiKeys.touch(id, at);
        },
      },
      secret,
      maxAgeMs: 2000,
      now: () => clock.t,
    });
    return { made, clock, counts, verifier };
  }

  it("names the caller by key id with the key's roles, answering from memory after one read", async () => {
    const { made, counts, verifier } = await setup(["admin", "fulfillment"]);
    const first = await verifier.authenticate(made.key);
    assert.deepEqual(first, {
      subject: `apikey:${made.id}`,
      userId: undefined,
      roles: ["admin", "fulfillment"],
      tokenId: made.id,
    });
    const again = verifier.authenticate(made.key);
    assert.ok(!(again instanceof Promise), "a known key is checked synchronously");
    assert.equal(again, first, "the same principal each time");
    assert.equal(counts.reads, 1);
  });

  it("refuses forged and malformed keys without reading the database", async () => {
    const { made, counts, verifier } = await setup();
    const otherSecret = generateApiKey(new TextEncoder().encode("x".repeat(40)));
    for (const key of [
      `${made.key.slice(0, -1)}${made.key.endsWith("A") ? "B" : "A"}`,
      otherSecret.key,
      "keel_short",
      "",
    ]) {
      assert.match(
        (await refusal(() => verifier.authenticate(key))) ?? "",
        /^unknown API key; send the whole key/,
        key,
      );
    }
    assert.equal(counts.reads, 0);
  });

  it("sees a revocation made elsewhere once the record is older than maxAgeMs, at once with forget", async () => {
    const { made, clock, verifier } = await setup();
    await verifier.authenticate(made.key);
    await store.apiKeys.revoke(made.id, new Date());
    clock.t = 1999;
    assert.equal(await refusal(() => verifier.authenticate(made.key)), undefined);
    clock.t = 2000;
    assert.equal(
      await refusal(() => verifier.authenticate(made.key)),
      `API key ${made.id} was revoked; ask an administrator for a new one`,
    );
    const second = await setup();
    await second.verifier.authenticate(second.made.key);
    await store.apiKeys.revoke(second.made.id, new Date());
    second.verifier.forget(second.made.id);
    assert.match(
      (await refusal(() => second.verifier.authenticate(second.made.key))) ?? "",
      /was revoked/,
    );
  });

  it("records the last use at most once a minute", async () => {
    const { made, clock, counts, verifier } = await setup();
    for (let i = 0; i < 5; i++) await verifier.authenticate(made.key);
    assert.equal(counts.touches, 1);
    clock.t = 59_999;
    await verifier.authenticate(made.key);
    assert.equal(counts.touches, 1);
    clock.t = 60_000;
    await verifier.authenticate(made.key);
    assert.equal(counts.touches, 2);
    assert.ok((await store.apiKeys.get(made.id))?.lastUsedAt);
  });
});
