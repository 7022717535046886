import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createSlidingWindow } from "./sliding-window.ts";

describe("sliding window", () => {
  it("counts each kind over the last window and forgets older steps", () => {
    const clock = { now: 1_000_000 };
    const window = createSlidingWindow({ kinds: 2, windowMs: 1000, now: () => clock.now });
    window.add(0);
    window.add(0, 2);
    window.add(1);
    assert.deepEqual([window.sum(0), window.sum(1)], [3, 1]);
    clock.now += 500;
    window.add(0);
    assert.equal(window.sum(0), 4);
    clock.now += 600; // the first step has left the window, the second has not
    assert.deepEqual([window.sum(0), window.sum(1)], [1, 0]);
    clock.now += 10_000; // a long pause: stale buckets are not counted, even before reuse
    assert.equal(window.sum(0), 0);
    window.add(1);
    window.clear();
    assert.equal(window.sum(1), 0);
  });

  it("refuses a window without length", () => {
    assert.throws(() => createSlidingWindow({ kinds: 1, windowMs: 0 }), RangeError);
  });
});
