import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { dropSchema, freshSchema, postgresSkipReason, postgresUrl } from "../testing/postgres.ts";
import { openPostgresTokenBuckets, type PostgresTokenBuckets } from "./pg-token-buckets.ts";

// Skipped only outside CI when no PostgreSQL is reachable; in CI that is a failure.
const skip = await postgresSkipReason();

describe("PostgreSQL token buckets", { skip: skip ?? false }, () => {
  const schema = freshSchema();
  let a: PostgresTokenBuckets;
  let b: PostgresTokenBuckets;

  before(async () => {
    // Two instances on one schema, opened together: the migration runs once.
    [a, b] = await Promise.all([
      openPostgresTokenBuckets({ connectionString: postgresUrl, schema }),
      openPostgresTokenBuckets({ connectionString: postgresUrl, schema }),
    ]);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await dropSchema(schema);
  });

  it("hands out a new bucket's burst once, across instances, then says when the next is due", async () => {
    const limit = { ratePerSecond: 1, burst: 10 };
    assert.deepEqual(await a.take("k1", limit, 4), { granted: 4, waitMs: 0 });
    assert.deepEqual(await b.take("k1", limit, 4), { granted: 4, waitMs: 0 });
    const last = await a.take("k1", limit, 4);
    assert.equal(last.granted, 2);
    // A token a second: the next one is at most a second away.
    assert.ok(last.waitMs > 0 && last.waitMs <= 1000, String(last.waitMs));
    const none = await b.take("k1", limit, 1);
    assert.equal(none.granted, 0);
    assert.ok(none.waitMs > 0 && none.waitMs <= 1000, String(none.waitMs));
  });

  it("never grants more than the burst and the refill, whatever the concurrency", async () => {
    const limit = { ratePerSecond: 0.001, burst: 50 };
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).take("k2", limit, 3)),
    );
    const granted = results.reduce((sum, r) => sum + r.granted, 0);
    assert.equal(granted, 50);
  });

  it("refills at the rate, up to the burst", async () => {
    const limit = { ratePerSecond: 20, burst: 2 };
    assert.equal((await a.take("k3", limit, 2)).granted, 2);
    await sleep(250);
    // 250 ms at 20/s is 5 tokens, but the bucket holds 2.
    assert.equal((await b.take("k3", limit, 5)).granted, 2);
  });

  it("deletes the buckets that are full again, and only those", async () => {
    await a.take("idle", { ratePerSecond: 1000, burst: 1 }, 1);
    await a.take("busy", { ratePerSecond: 0.001, burst: 5 }, 1);
    await sleep(20);
    await a.sweep();
    const client = new pg.Client({ connectionString: postgresUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ key: string }>(
        `SELECT key FROM ${schema}.rate_buckets WHERE key IN ('idle', 'busy')`,
      );
      assert.deepEqual(
        rows.map((r) => r.key),
        ["busy"],
      );
    } finally {
      await client.end();
    }
  });
});
