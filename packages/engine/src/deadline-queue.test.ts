import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { DeadlineQueue, type Expiring } from "./deadline-queue.ts";

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

/** Waits until `done()`, for 2 s at most (timers run late on a loaded machine). */
async function until(done: () => boolean): Promise<void> {
  const started = performance.now();
  while (!done() && performance.now() - started < 2000) await sleep(5);
}

describe("DeadlineQueue", () => {
  it("expires its calls in the order they started, each once, none before its time", async () => {
    let made = 0;
    const queue = new DeadlineQueue({ ms: 40, error: () => `late ${++made}` });
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
    const queue = new DeadlineQueue({ ms: 30, error: () => "late" });
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
    const queue = new DeadlineQueue({ ms: 30, error: () => "late" });
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
    const queue = new DeadlineQueue({
      ms: 20,
      error: () => {
        throw failure;
      },
    });
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
});
