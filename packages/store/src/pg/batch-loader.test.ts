import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createBatchLoader } from "./batch-loader.ts";

describe("batch loader", () => {
  it("answers the keys asked for in one turn with one load, each key once", async () => {
    const batches: number[][] = [];
    const load = createBatchLoader<number, string>({
      load: async (keys) => {
        batches.push(keys);
        return new Map(keys.filter((k) => k !== 3).map((k) => [k, `v${k}`]));
      },
    });
    const answers = await Promise.all([load(1), load(2), load(1), load(3)]);
    assert.deepEqual(answers, ["v1", "v2", "v1", undefined]);
    assert.deepEqual(batches, [[1, 2, 3]]);
    // A later turn is a batch of its own.
    assert.equal(await load(2), "v2");
    assert.deepEqual(batches, [[1, 2, 3], [2]]);
  });

  it("splits a turn's keys into batches of at most maxBatch", async () => {
    const batches: number[][] = [];
    const load = createBatchLoader<number, number>({
      maxBatch: 2,
      load: async (keys) => {
        batches.push(keys);
        return new Map(keys.map((k) => [k, k * 10]));
      },
    });
    assert.deepEqual(await Promise.all([1, 2, 3, 4, 5].map(load)), [10, 20, 30, 40, 50]);
    assert.deepEqual(batches, [[1, 2], [3, 4], [5]]);
  });

  it("fails every call of a batch whose load fails, and the next batch still works", async () => {
    let fail = true;
    const load = createBatchLoader<number, number>({
      load: async (keys) => {
        if (fail) throw new Error("database gone");
        return new Map(keys.map((k) => [k, k]));
      },
    });
    const results = await Promise.allSettled([load(1), load(2)]);
    assert.deepEqual(
      results.map((r) => (r.status === "rejected" ? (r.reason as Error).message : r.value)),
      ["database gone", "database gone"],
    );
    fail = false;
    assert.equal(await load(7), 7);
  });
});
