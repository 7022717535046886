import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { UserStatus } from "@keel/gen/user/v1/user_pb";
import { openSqliteStore, type Store } from "@keel/store";
import { openTestPostgresStore, postgresSkipReason } from "@keel/store/testing";
import { Registry } from "prom-client";
import { registerStoreMetrics } from "./store-metrics.ts";

const skip = await postgresSkipReason();

/** The value of one sample line of Prometheus text, by its name and labels. */
function sample(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  assert.ok(line !== undefined, `no ${series} in:\n${text}`);
  return Number(line.slice(series.length + 1));
}

describe("store metrics", { skip: skip ?? false }, () => {
  let store: Store;
  before(async () => {
    store = await openTestPostgresStore();
  });
  after(() => store.close());

  it("count PostgreSQL's statements and show its pool", async () => {
    const registry = new Registry();
    registerStoreMetrics(registry, store);
    const user = await store.users.create({
      username: "metered",
      email: "metered@example.com",
      status: UserStatus.ACTIVE,
      tags: [],
      passwordHash: "h",
    });
    const before = sample(await registry.metrics(), "keel_store_queries_total");
    await store.users.get(user.id);
    await store.users.get(user.id);
    const text = await registry.metrics();
    assert.equal(sample(text, "keel_store_queries_total") - before, 2);
    assert.equal(sample(text, "keel_store_pool_waiting"), 0);
    assert.equal(sample(text, 'keel_store_pool_connections{state="busy"}'), 0);
    assert.ok(sample(text, 'keel_store_pool_connections{state="idle"}') >= 1);
    assert.equal(sample(text, "keel_store_pool_exhausted_total"), 0);
  });
});

describe("store metrics of the embedded store", () => {
  it("are not registered: SQLite has no pool and no round trips", async () => {
    const registry = new Registry();
    const store = openSqliteStore({ path: ":memory:" });
    try {
      registerStoreMetrics(registry, store);
      assert.doesNotMatch(await registry.metrics(), /keel_store_/);
    } finally {
      await store.close();
    }
  });
});
