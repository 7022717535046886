import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { median, percentile, summarizeLatencies } from "./stats.ts";

describe("stats", () => {
  it("takes medians of odd and even counts", () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
  });

  it("takes nearest-rank percentiles", () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(values, 50), 50);
    assert.equal(percentile(values, 99), 99);
    assert.equal(percentile(values, 100), 100);
    assert.equal(percentile([7], 99), 7);
  });

  it("summarizes unsorted latencies", () => {
    assert.deepEqual(summarizeLatencies([5, 1, 3, 2, 4]), { p50: 3, p99: 5, max: 5 });
  });
});
