import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { DeadlineQueue, type Expiring } from "./deadline-queue.ts";
import { until } from "./testing/fixture.ts";

/** A call of the queue's length, started now, that records why it expired, and when it should have. */
function call(
  queue: DeadlineQueue,
  label: string,
  expired: string[],
  late: number[] = [],
): Expiring {
  const item: Expiring = {
    expiresAt: performance.now() + queue.ms,
    queuePrevious: null,
    queueNext: null,
    expire: (reason) => {
      expired.push(`${label}: ${String(reason)}`);
      late.push(performance.now() - item.expiresAt);
    },
  };
  queue.add(item);
  return item;
}

describe("DeadlineQueue", () => {
  it("expires its calls in the order they started, each once, none before its time", async () => {
    let made = 0;
    const queue = new DeadlineQueue(() => `late ${++made}`, 40);
    const expired: string[] = [];
    const late: number[] = [];
    call(queue, "a", expired, late);
    await sleep(15);
    call(queue, "b", expired, late);
    call(queue, "c", expired, late);
    await until(() => expired.length === 3);
    assert.deepEqual(expired, ["a: late 1", "b: late 2", "c: late 3"]);
    // performance.now() and the timers' clock round differently: within a millisecond.
    for (const ms of late) assert.ok(ms > -1, `expired ${-ms} ms early`);
    await sleep(60);
    assert.equal(expired.length, 3);
  });

  it("never expires a call that ended: first, middle or last, and re-arms for the next", async () => {
    const queue = new DeadlineQueue(() => "late", 30);
    const expired: string[] = [];
    const a = call(queue, "a", expired);
    await sleep(10);
    const b = call(queue, "b", expired);
    const c = call(queue, "c", expired);
    const d = call(queue, "d", expired);
    queue.delete(a);
    queue.delete(c);
    queue.delete(c);
    queue.delete(d);
    // The timer armed for a fires first, finds b not yet due and waits for it.
    await until(() => expired.length > 0);
    await sleep(40);
    assert.deepEqual(expired, ["b: late"]);
    assert.equal(queue.has(b), false);
  });

  it("expires a call that joins after the queue emptied, at its own time", async () => {
    const queue = new DeadlineQueue(() => "late", 30);
    const expired: string[] = [];
    queue.delete(call(queue, "a", expired));
    await sleep(20);
    const joined = performance.now();
    const late: number[] = [];
    call(queue, "b", expired, late);
    await until(() => expired.length > 0);
    assert.deepEqual(expired, ["b: late"]);
    assert.ok((late[0] as number) > -1, "not before its time");
    assert.ok(performance.now() - joined >= 29);
  });

  it("expires every due call even when making the deadline's error throws", async () => {
    const failure = new Error("no error for you");
    const queue = new DeadlineQueue(() => {
      throw failure;
    }, 20);
    const reasons: unknown[] = [];
    for (let i = 0; i < 2; i++) {
      queue.add({
        expiresAt: performance.now() + queue.ms,
        queuePrevious: null,
        queueNext: null,
        expire: (reason) => reasons.push(reason),
      });
    }
    await until(() => reasons.length === 2);
    assert.deepEqual(reasons, [failure, failure]);
  });

  it("keeps calls of different lengths in the order they expire, armed again for a sooner one", async () => {
    const queue = new DeadlineQueue(() => "late");
    const expired: string[] = [];
    const late: number[] = [];
    const join = (label: string, ms: number) => {
      const item: Expiring = {
        expiresAt: performance.now() + ms,
        queuePrevious: null,
        queueNext: null,
        expire: () => {
          expired.push(label);
          late.push(performance.now() - item.expiresAt);
        },
      };
      assert.equal(queue.add(item), true);
      return item;
    };
    join("300", 300);
    join("60", 60);
    const gone = join("40", 40);
    join("120", 120);
    // The first now, sooner than the timer armed for 300: it must not wait for it.
    join("20", 20);
    queue.delete(gone);
    await until(() => expired.length === 4);
    assert.deepEqual(expired, ["20", "60", "120", "300"]);
    for (const ms of late) assert.ok(ms > -1, `expired ${-ms} ms early`);
    assert.ok((late[0] as number) < 200, `the 20 ms call waited ${late[0]} ms past its time`);
  });

  it("refuses a call that would step over more than its bound, and takes one within it", () => {
    const queue = new DeadlineQueue(() => "late", 0, 2);
    const at = performance.now() + 60_000;
    const item = (expiresAt: number): Expiring => ({
      expiresAt,
      queuePrevious: null,
      queueNext: null,
      expire: () => {},
    });
    const long = [item(at), item(at + 1), item(at + 2)];
    for (const one of long) assert.equal(queue.add(one), true);
    // Sooner than all three: three steps, over the bound of two.
    const short = item(at - 1);
    assert.equal(queue.add(short), false);
    assert.equal(queue.has(short), false);
    // Sooner than the last two only: within it.
    const between = item(at + 0.5);
    assert.equal(queue.add(between), true);
    for (const one of [...long, between]) queue.delete(one);
  });
});
