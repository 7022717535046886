import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type BalancingPolicy, createPicker } from "./pickers.ts";

const endpoints = (...inFlight: number[]) =>
  inFlight.map((n, i) => ({ name: `e${i}`, inFlight: n }));

/** A random source returning `values` in turn. */
const sequence = (...values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length] as number;
};

describe("pickers", () => {
  it("pick_first takes the first candidate", () => {
    const pick = createPicker("pick_first");
    assert.equal(pick(endpoints(5, 0, 0)).name, "e0");
  });

  it("round_robin takes turns from a random start", () => {
    const pick = createPicker("round_robin", () => 0.5); // start at 512
    const list = endpoints(0, 0, 0);
    const names = Array.from({ length: 6 }, () => pick(list).name);
    assert.deepEqual(names, ["e2", "e0", "e1", "e2", "e0", "e1"]);
  });

  it("least_request takes the less loaded of two random candidates", () => {
    // First draw index 0, then index 2 of the three (j=1 skips over i=0 → 2).
    const pick = createPicker("least_request", sequence(0, 0.5));
    assert.equal(pick(endpoints(3, 0, 1)).name, "e2", "e1 is idle but was not drawn");
    assert.equal(pick(endpoints(0, 0, 1)).name, "e0", "a tie goes to the first drawn");
    assert.equal(pick(endpoints(7)).name, "e0");
  });

  it("least_request sends most calls to the idle one of two endpoints", () => {
    const pick = createPicker("least_request");
    const list = endpoints(10, 0);
    const counts = { e0: 0, e1: 0 };
    for (let i = 0; i < 100; i++) counts[pick(list).name as "e0" | "e1"]++;
    assert.deepEqual(counts, { e0: 0, e1: 100 });
  });

  it("refuses an unknown policy", () => {
    assert.throws(() => createPicker("random" as BalancingPolicy), /unknown balancing policy/);
  });
});
