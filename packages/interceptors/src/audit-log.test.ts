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

/** A refused Login of `peer`, as the audit interceptor records one. */
function refusal(peer: string, n: number, outcome = "ResourceExhausted"): AuditEntry {
  return {
    time: new Date(n * 1000).toISOString(),
    method: "user.v1.UserService/Login",
    principal: null,
    peer,
    request_id: `req-${n}`,
    outcome,
    targets: { user_ids: [], order_ids: [] },
    error: "rate limited",
  };
}

/** A log writing into memory; `lines()` parses what was written so far. */
function memory(options: Omit<Parameters<typeof createAuditLog>[0], "destination"> = {}) {
  let text = "";
  const log = createAuditLog({
    ...options,
    destination: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        text += chunk.toString();
        callback();
      },
    }),
  });
  const lines = () =>
    text
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as AuditEntry);
  return { log, lines };
}

describe("audit log summaries of repeated refusals", () => {
  it("writes a caller's first refusal and counts the rest into one summary entry", async () => {
    // Issue 17, item 9: 3,000 refused Logins in 3 s were 3,000 entries.
    const { log, lines } = memory({ summary: { intervalMs: 3_600_000 } });
    for (let i = 1; i <= 3000; i++) log.write(refusal("10.0.0.1", i));
    log.write(refusal("10.0.0.2", 1));
    log.write(entry(1));
    await log.close();
    const written = lines();
    assert.deepEqual(
      written.map((e) => [e.peer, e.outcome, e.request_id, e.repeated?.count]),
      [
        ["10.0.0.1", "ResourceExhausted", "req-1", undefined],
        ["10.0.0.2", "ResourceExhausted", "req-1", undefined],
        ["127.0.0.1", "OK", "req-1", undefined],
        ["10.0.0.1", "ResourceExhausted", "", 2999],
      ],
    );
    assert.deepEqual(written[3]?.repeated, {
      count: 2999,
      first: new Date(2000).toISOString(),
      last: new Date(3_000_000).toISOString(),
    });
  });

  it("writes the summaries when each interval ends, then a caller's next refusal in full", async () => {
    const { log, lines } = memory({ summary: { intervalMs: 30 } });
    for (let i = 1; i <= 5; i++) log.write(refusal("10.0.0.1", i, "Unauthenticated"));
    while (lines().length < 2) await sleep(10);
    log.write(refusal("10.0.0.1", 6, "Unauthenticated"));
    await log.flush();
    assert.deepEqual(
      lines().map((e) => [e.request_id, e.repeated?.count]),
      [
        ["req-1", undefined],
        ["", 4],
        ["req-6", undefined],
      ],
    );
    await log.close();
  });

  it("holds at most maxKeys callers, counting further ones together per method and outcome", async () => {
    const { log, lines } = memory({ summary: { intervalMs: 3_600_000, maxKeys: 2 } });
    for (let peer = 1; peer <= 100; peer++) {
      for (let i = 1; i <= 3; i++) log.write(refusal(`10.0.0.${peer}`, i));
    }
    await log.close();
    assert.deepEqual(
      lines().map((e) => [e.peer, e.repeated?.count]),
      [
        ["10.0.0.1", undefined],
        ["10.0.0.2", undefined],
        ["10.0.0.1", 2],
        ["10.0.0.2", 2],
        ["*", 98 * 3],
      ],
    );
  });
});

describe("audit log rotation", () => {
  const read = async (path: string) => {
    try {
      return (await readFile(path, "utf8")).split("\n").filter(Boolean);
    } catch {
      return [];
    }
  };

  it("rotates by size, keeps `keep` files, never splits an entry, new files owner-only", async () => {
    const dir = await mkdtemp(join(tmpdir(), "keel-audit-"));
    try {
      const path = join(dir, "audit.log");
      const log = createAuditLog({ path, maxBytes: 2000, keep: 3 });
      for (let n = 1; n <= 200; n++) {
        log.write(entry(n));
        if (n % 7 === 0) await log.flush();
      }
      await log.close();
      const files = [`${path}.3`, `${path}.2`, `${path}.1`, path];
      const ids: number[] = [];
      for (const file of files) {
        const { size, mode } = await stat(file);
        assert.ok(size <= 2000, `${file} holds ${size} bytes`);
        assert.equal(mode & 0o777, 0o600, file);
        for (const line of await read(file)) ids.push(Number(JSON.parse(line).request_id.slice(4)));
      }
      assert.deepEqual(await read(`${path}.4`), [], "only `keep` rotated files");
      // The newest entries, every one of them, in order, up to the last.
      assert.equal(ids.at(-1), 200);
      assert.deepEqual(
        ids,
        ids.map((_, i) => 200 - ids.length + 1 + i),
      );
      assert.ok(ids.length >= 30, `${ids.length} entries kept`);
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  it("loses no entry when two processes' logs rotate the same file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "keel-audit-"));
    try {
      const path = join(dir, "audit.log");
      const logs = [0, 1].map(() => createAuditLog({ path, maxBytes: 3000, keep: 1000 }));
      for (let n = 1; n <= 400; n++) {
        logs[n % 2]?.write(entry(n));
        if (n % 10 === 0) await Promise.all(logs.map((l) => l.flush()));
      }
      await Promise.all(logs.map((l) => l.close()));
      const ids = new Set<number>();
      for (let i = 0; i <= 1000; i++) {
        for (const line of await read(i === 0 ? path : `${path}.${i}`)) {
          ids.add(Number(JSON.parse(line).request_id.slice(4)));
        }
      }
      assert.equal(ids.size, 400);
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});
