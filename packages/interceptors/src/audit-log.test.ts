import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type AuditEntry, createAuditLog } from "./audit-log.ts";

function entry(n: number): AuditEntry {
  return {
    time: new Date(0).toISOString(),
    method: "user.v1.UserService/CreateUser",
    principal: null,
    peer: "127.0.0.1",
    request_id: `req-${n}`,
    outcome: "OK",
    targets: { user_ids: [String(n)], order_ids: [] },
  };
}

/**
 * A destination that holds each write for `delayMs` before confirming it, with a tiny buffer so
 * that it asks for backpressure at once. It counts writes made while it was asking to wait.
 */
function slowDestination(delayMs: number) {
  const received: string[] = [];
  const destination = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _encoding, callback) {
      setTimeout(() => {
        received.push(chunk.toString());
        callback();
      }, delayMs);
    },
  });
  let writesWhileFull = 0;
  const write = destination.write.bind(destination);
  destination.write = ((...args: Parameters<typeof write>) => {
    if (destination.writableNeedDrain) writesWhileFull++;
    return write(...args);
  }) as typeof destination.write;
  return {
    destination,
    lines: () => received.join("").split("\n").filter(Boolean),
    writesWhileFull: () => writesWhileFull,
  };
}

describe("audit log", () => {
  it("writes every entry as one line of JSON, in order", async () => {
    const dest = slowDestination(0);
    const log = createAuditLog({ destination: dest.destination });
    for (let i = 0; i < 500; i++) {
      log.write(entry(i));
      if (i % 100 === 0) await sleep(1);
    }
    await log.flush();
    const lines = dest.lines();
    assert.equal(lines.length, 500);
    assert.deepEqual(
      lines.map((line) => JSON.parse(line) as AuditEntry),
      Array.from({ length: 500 }, (_, i) => entry(i)),
    );
    assert.deepEqual(log.stats(), { written: 500, dropped: 0, queued: 0 });
    assert.equal(dest.writesWhileFull(), 0, "waited for 'drain' whenever asked to");
  });

  it("drops and counts entries beyond maxQueue, never blocking or throwing", async () => {
    const dest = slowDestination(100);
    const drops: { total: number; at: number }[] = [];
    const log = createAuditLog({
      destination: dest.destination,
      maxQueue: 5,
      onDrop: (total) => drops.push({ total, at: Date.now() }),
    });
    const start = performance.now();
    for (let i = 0; i < 20; i++) assert.equal(log.write(entry(i)), undefined);
    assert.ok(performance.now() - start < 50, "write() returns at once");
    assert.deepEqual(log.stats(), { written: 0, dropped: 15, queued: 5 });
    assert.deepEqual(
      drops.map((d) => d.total),
      [1],
      "the first drop is reported at once, the rest later",
    );

    await log.flush();
    assert.deepEqual(log.stats(), { written: 5, dropped: 15, queued: 0 });
    assert.deepEqual(
      dest.lines().map((line) => (JSON.parse(line) as AuditEntry).request_id),
      ["req-0", "req-1", "req-2", "req-3", "req-4"],
    );
    log.write(entry(20));
    await log.flush();
    assert.equal(log.stats().written, 6, "accepts entries again once the queue has room");

    await sleep(1100);
    assert.deepEqual(
      drops.map((d) => d.total),
      [1, 15],
    );
    const [first, second] = drops;
    assert.ok(first && second && second.at - first.at >= 990, "at most one report per second");
    await log.close();
  });

  it("flush waits until everything queued before it is written, respecting backpressure", async () => {
    const dest = slowDestination(20);
    const log = createAuditLog({ destination: dest.destination });
    // Several ticks give several chunks, each having to wait for the previous one to drain.
    for (let i = 0; i < 6; i++) {
      log.write(entry(i));
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.ok(dest.lines().length < 6, "the destination is still busy");
    const flushed = log.flush();
    log.write(entry(6));
    await flushed;
    assert.ok(dest.lines().length >= 6);
    assert.deepEqual(
      dest.lines().slice(0, 6),
      Array.from({ length: 6 }, (_, i) => JSON.stringify(entry(i))),
    );
    assert.equal(dest.writesWhileFull(), 0, "waited for 'drain' whenever asked to");
    await log.flush();
    assert.equal(dest.lines().length, 7);
  });

  it("close flushes, ends the stream and drops later entries", async () => {
    const dest = slowDestination(10);
    const drops: number[] = [];
    const log = createAuditLog({ destination: dest.destination, onDrop: (n) => drops.push(n) });
    for (let i = 0; i < 3; i++) log.write(entry(i));
    await log.close();
    assert.equal(dest.lines().length, 3);
    assert.ok(dest.destination.writableFinished, "the stream was ended");
    assert.doesNotThrow(() => log.write(entry(3)));
    assert.deepEqual(log.stats(), { written: 3, dropped: 1, queued: 0 });
    assert.deepEqual(drops, [1]);
  });

  it("appends to the file at `path`, created readable by its owner only", async () => {
    const dir = await mkdtemp(join(tmpdir(), "audit-log-"));
    try {
      const path = join(dir, "audit.jsonl");
      for (const n of [1, 2]) {
        const log = createAuditLog({ path });
        log.write(entry(n));
        await log.close();
      }
      const lines = (await readFile(path, "utf8")).trimEnd().split("\n");
      assert.deepEqual(
        lines.map((line) => (JSON.parse(line) as AuditEntry).request_id),
        ["req-1", "req-2"],
      );
      assert.equal((await stat(path)).mode & 0o777, 0o600);
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  it("reports a failed destination, drops what it held and rejects flush", async () => {
    const errors: Error[] = [];
    const drops: number[] = [];
    const log = createAuditLog({
      destination: new Writable({
        write: (_chunk, _encoding, callback) => callback(new Error("disk full")),
      }),
      onError: (err) => errors.push(err),
      onDrop: (n) => drops.push(n),
    });
    log.write(entry(1));
    log.write(entry(2));
    await assert.rejects(log.flush(), /disk full/);
    assert.doesNotThrow(() => log.write(entry(3)));
    assert.deepEqual(log.stats(), { written: 0, dropped: 3, queued: 0 });
    assert.equal(errors.length, 1);
    assert.deepEqual(drops, [2], "reported at once; the third drop waits for the next second");
    await assert.rejects(log.close(), /disk full/);
    assert.deepEqual(drops, [2, 3], "close reports the drops not yet reported");
  });

  it("needs a destination or a path", () => {
    assert.throws(() => createAuditLog({}), /destination or a path/);
  });
});
