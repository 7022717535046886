import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createRetryBudget } from "./retry-budget.ts";

/** Takes retries until the budget refuses one; returns how many it allowed. */
function drain(budget: { tryRetry(): boolean }): number {
  let n = 0;
  while (budget.tryRetry()) n++;
  return n;
}

describe("retry budget", () => {
  it("allows the floor without calls, plus the ratio of the window's calls", () => {
    const clock = { now: 0 };
    const budget = createRetryBudget({
      ratio: 0.1,
      minPerSecond: 1,
      windowMs: 10_000,
      now: () => clock.now,
    });
    assert.equal(budget.available(), 10);
    for (let i = 0; i < 100; i++) budget.onCall();
    assert.equal(budget.available(), 20);
    assert.equal(drain(budget), 20);
    assert.equal(budget.tryRetry(), false);
  });

  it("lets retries come back as the window moves on", () => {
    const clock = { now: 0 };
    const budget = createRetryBudget({
      ratio: 0,
      minPerSecond: 1,
      windowMs: 2000,
      now: () => clock.now,
    });
    assert.equal(drain(budget), 2);
    clock.now += 1000;
    assert.equal(budget.tryRetry(), false, "the retries are still in the window");
    clock.now += 1200;
    assert.equal(drain(budget), 2);
  });

  it("with no floor, allows retries only as a share of calls", () => {
    const budget = createRetryBudget({ ratio: 0.5, minPerSecond: 0 });
    assert.equal(budget.tryRetry(), false);
    budget.onCall();
    budget.onCall();
    assert.equal(drain(budget), 1);
  });

  it("refuses a negative ratio", () => {
    assert.throws(() => createRetryBudget({ ratio: -1 }), RangeError);
  });
});
