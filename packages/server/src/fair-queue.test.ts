import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { RetryInfoSchema } from "@keel/gen/errdetails/v1/errdetails_pb";
import { createFairQueue } from "./fair-queue.ts";

/** A task that ends when `finish` is called, recording when it started. */
function gate(log: string[], name: string) {
  let finish = () => {};
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  return {
    task: () => {
      log.push(name);
      return done.then(() => name);
    },
    finish: () => finish(),
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

function isBusy(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof ConnectError);
    assert.equal(err.code, Code.ResourceExhausted);
    assert.match(err.rawMessage, pattern);
    const retry = err.findDetails(RetryInfoSchema)[0];
    assert.ok(retry?.retryDelay !== undefined && retry.retryDelay.seconds >= 1n);
    assert.ok(Number(err.metadata.get("retry-after")) >= 1);
    return true;
  };
}

describe("fair queue", () => {
  it("runs at most `concurrency` tasks, and callers take turns", async () => {
    const queue = createFairQueue({ name: "hashing", concurrency: 1, maxQueued: 10, perCaller: 5 });
    const log: string[] = [];
    const names = ["a1", "a2", "a3", "a4", "b1", "c1", "b2"];
    const tasks = names.map((name) => gate(log, name));
    // The caller is the name's letter.
    const results = tasks.map((t, i) => queue.run((names[i] as string)[0] as string, t.task));
    await tick();
    assert.deepEqual(log, ["a1"]);
    assert.deepEqual(queue.stats(), { running: 1, queued: 6, callers: 3, refused: 0 });
    for (const t of tasks) {
      t.finish();
      await tick();
    }
    assert.deepEqual(await Promise.all(results), ["a1", "a2", "a3", "a4", "b1", "c1", "b2"]);
    // a1 ran alone; then b and c, who had had no turn, went before a's next task.
    assert.deepEqual(log, ["a1", "b1", "c1", "a2", "b2", "a3", "a4"]);
    assert.deepEqual(queue.stats(), { running: 0, queued: 0, callers: 0, refused: 0 });
  });

  it("refuses a caller past its share, and takes it again once a task ends", async () => {
    const queue = createFairQueue({ name: "hashing", concurrency: 1, maxQueued: 10, perCaller: 2 });
    const log: string[] = [];
    const [a1, a2] = [gate(log, "a1"), gate(log, "a2")];
    const running = [queue.run("a", a1.task), queue.run("a", a2.task)];
    await assert.rejects(
      queue.run("a", async () => "a3"),
      isBusy(/^hashing is busy: this client already has 2 requests waiting/),
    );
    // Another caller is not affected by a's share.
    const b = queue.run("b", async () => "b1");
    a1.finish();
    await tick();
    const a3 = queue.run("a", async () => "a3");
    a2.finish();
    assert.deepEqual(await Promise.all([...running, b, a3]), ["a1", "a2", "b1", "a3"]);
    assert.equal(queue.stats().refused, 1);
  });

  it("refuses everyone once `maxQueued` tasks wait", async () => {
    const queue = createFairQueue({ name: "hashing", concurrency: 1, maxQueued: 2, perCaller: 5 });
    const log: string[] = [];
    const gates = ["x", "y", "z"].map((name) => gate(log, name));
    const accepted = gates.map((g, i) => queue.run(`caller${i}`, g.task));
    await assert.rejects(
      queue.run("late", async () => "late"),
      isBusy(/2 requests are waiting/),
    );
    for (const g of gates) g.finish();
    assert.deepEqual(await Promise.all(accepted), ["x", "y", "z"]);
  });

  it("drops a waiting task whose call ends, freeing its place", async () => {
    const queue = createFairQueue({ name: "hashing", concurrency: 1, maxQueued: 10, perCaller: 2 });
    const log: string[] = [];
    const first = gate(log, "first");
    const running = queue.run("a", first.task);
    const controller = new AbortController();
    const waiting = queue.run("a", async () => "never", controller.signal);
    const reason = new ConnectError("deadline exceeded", Code.DeadlineExceeded);
    controller.abort(reason);
    await assert.rejects(waiting, (err) => err === reason);
    assert.deepEqual(queue.stats(), { running: 1, queued: 0, callers: 1, refused: 0 });
    // Its place is free again: a can queue another.
    const next = queue.run("a", async () => "next");
    first.finish();
    assert.deepEqual(await Promise.all([running, next]), ["first", "next"]);
    assert.deepEqual(log, ["first"]);
    await assert.rejects(
      queue.run("a", async () => "x", AbortSignal.abort(reason)),
      (err) => err === reason,
    );
  });

  it("passes a task's failure on and keeps going", async () => {
    const queue = createFairQueue({ name: "hashing", concurrency: 1, maxQueued: 10, perCaller: 2 });
    await assert.rejects(
      queue.run("a", () => Promise.reject(new Error("boom"))),
      /boom/,
    );
    assert.equal(await queue.run("a", async () => "after"), "after");
  });

  it("checks its options", () => {
    assert.throws(
      () => createFairQueue({ name: "hashing", concurrency: 0, maxQueued: 1, perCaller: 1 }),
      /hashing: concurrency must be a positive integer, got 0/,
    );
  });
});
