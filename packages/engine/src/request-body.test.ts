import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { Base64EnvelopeReader, WholeBodyReader } from "./body-readers.ts";
import { ByteBudget } from "./byte-budget.ts";
import { Call } from "./call.ts";
import type { BodyReader } from "./envelope-reader.ts";
import { IdleWatch } from "./idle-watch.ts";
import { RequestBody } from "./request-body.ts";

const options = (idle: IdleWatch) => ({
  readMaxBytes: 1024,
  budget: new ByteBudget("this connection", 1024),
  idle,
});

/** The end of this turn of the event loop, when bodies copy what they keep (see `owned-bytes.ts`). */
const afterReads = () => new Promise((resolve) => setImmediate(resolve));

/** A body read from a PassThrough, by `reader` (default gRPC's), against a budget of `limit`. */
const bodyOn = (reader?: BodyReader, limit = 1024) => {
  const budget = new ByteBudget("this connection", limit);
  const source = new PassThrough();
  const body = new RequestBody(
    source,
    new Call("grpc", undefined),
    { readMaxBytes: 1024, budget, idle: new IdleWatch(30_000) },
    reader,
  );
  return { budget, source, body };
};

describe("RequestBody", () => {
  // A call can end before its body is read: a deadline below a millisecond ("1n"), a client gone
  // during the request gate, a shutdown. Watched for stalls, it would be held until the timeout.
  it("is not watched for stalls when its call has already ended, and fails with its reason", async () => {
    const call = new Call("grpc", undefined);
    call.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
    const idle = new IdleWatch(30_000);
    const body = new RequestBody(new PassThrough(), call, options(idle));
    assert.equal(idle.size, 0, "a body of an ended call is watched");
    await assert.rejects(body.all(), /the operation timed out/);
  });

  it("refuses a second body on a stream whose body is being read, and allows one after it ended", async () => {
    const source = new PassThrough();
    const idle = new IdleWatch(30_000);
    const first = new RequestBody(source, new Call("grpc", undefined), options(idle));
    assert.throws(
      () => new RequestBody(source, new Call("grpc", undefined), options(idle)),
      /already being read/,
    );
    source.write(Buffer.from([0, 0, 0, 0, 1, 7]));
    source.end();
    assert.deepEqual(
      (await first.all()).map((e) => [...e.data]),
      [[7]],
    );
    new RequestBody(source, new Call("grpc", undefined), options(idle)).stop();
    assert.equal(idle.size, 0);
  });

  it("is watched while incomplete, and no more once it ends", async () => {
    const source = new PassThrough();
    const idle = new IdleWatch(30_000);
    const body = new RequestBody(source, new Call("grpc", undefined), options(idle));
    assert.equal(idle.size, 1);
    source.end(Buffer.from([0, 0, 0, 0, 0]));
    assert.equal((await body.all()).length, 1);
    assert.equal(idle.size, 0);
  });

  it("fails a body that stalls, with what it waited for, and keeps one that trickles", async () => {
    // The trickle's 20 ms gaps stay far below the 300 ms limit however late a loaded machine's
    // timers fire.
    const idle = new IdleWatch(300);
    const stalled = new RequestBody(new PassThrough(), new Call("grpc", undefined), options(idle));
    const trickle = new PassThrough();
    const alive = new RequestBody(trickle, new Call("grpc", undefined), options(idle));
    const bytes = [0, 0, 0, 0, 3, 1, 2, 3];
    const feeding = setInterval(() => {
      const next = bytes.shift();
      if (next === undefined) {
        clearInterval(feeding);
        trickle.end();
      } else trickle.write(Buffer.from([next]));
    }, 20);
    await assert.rejects(stalled.all(), (err: unknown) => {
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code, Code.DeadlineExceeded);
      assert.equal(err.rawMessage, "the request body stalled: no data for 300 ms");
      return true;
    });
    const got = await alive.all();
    assert.deepEqual([...(got[0]?.data ?? [])], [1, 2, 3]);
    assert.equal(idle.size, 0);
  });

  describe("holds no view of a larger buffer past the read that brought it", () => {
    // Node's HTTP/2 hands DATA frames as views of the socket read they came in (up to 64 KiB),
    // which it reuses or keeps: a body keeping the view would keep the whole read.
    /**
     * Writes `bytes` as a view of a 64 KiB "socket read", lets the turn end, then reuses the read
     * (fills it with `reuse`), as Node does with its buffers.
     */
    const sendFromRead = async (source: PassThrough, bytes: number[], reuse: number) => {
      const read = Buffer.alloc(64 * 1024);
      read.set(bytes, 100);
      source.write(read.subarray(100, 100 + bytes.length));
      await afterReads();
      read.fill(reuse);
    };

    it("an envelope half received", async () => {
      const { source, body } = bodyOn();
      await sendFromRead(source, [0, 0, 0, 0, 4, 1, 2], 0xff);
      source.end(Buffer.from([3, 4]));
      assert.deepEqual([...((await body.all())[0]?.data ?? [])], [1, 2, 3, 4]);
    });

    it("a message no consumer has taken yet", async () => {
      const { source, body } = bodyOn();
      await sendFromRead(source, [0, 0, 0, 0, 2, 5, 6], 0xff);
      const first = await body[Symbol.asyncIterator]().next();
      assert.deepEqual([...(first.value?.data ?? [])], [5, 6]);
      body.stop();
    });

    it("a body that is one message (Connect unary, REST)", async () => {
      const { source, body } = bodyOn(new WholeBodyReader(1024, undefined, 0));
      await sendFromRead(source, [...Buffer.from('{"a":')], 0x20);
      source.end(Buffer.from("1}"));
      assert.equal(Buffer.from((await body.all())[0]?.data ?? []).toString(), '{"a":1}');
    });

    it("a grpc-web-text body's decoded bytes (small ones are views of Buffer's shared pool)", async () => {
      const reader = new Base64EnvelopeReader(1024);
      const { source } = bodyOn(reader);
      // AAAAAAMB is the start of the envelope [0, 0,0,0,3, 1,2,3]: it waits for the rest.
      source.write(Buffer.from("AAAAAAMB"));
      const pending = (reader as unknown as { inner: { pending: Buffer[] } }).inner.pending;
      assert.equal(pending.length, 1);
      assert.notEqual((pending[0] as Buffer).buffer.byteLength, (pending[0] as Buffer).length);
      await afterReads();
      assert.equal((pending[0] as Buffer).buffer.byteLength, (pending[0] as Buffer).length);
    });
  });

  it("counts each piece it holds besides its bytes: a body of tiny messages is refused", async () => {
    // 500 empty messages are 2,500 bytes, far under the 64 KiB budget, but 500 pieces.
    const { budget, source, body } = bodyOn(undefined, 64 * 1024);
    for (let i = 0; i < 500; i++) source.write(Buffer.from([0, 0, 0, 0, 0]));
    source.end();
    await assert.rejects(body.all(), /this connection is holding its limit of 65536 bytes/);
    assert.equal(budget.held, 0);
  });

  it("drops what it holds when stopped, and gives it all back", async () => {
    const { budget, source, body } = bodyOn(undefined, 64 * 1024);
    source.write(Buffer.from([0, 0, 0, 0, 100, 1, 2, 3]));
    await afterReads();
    assert.equal(budget.held, 3 + 384);
    body.stop();
    assert.equal(budget.held, 0);
    const reader = (body as unknown as { reader: { byteLength: number; pieces: number } }).reader;
    assert.deepEqual([reader.byteLength, reader.pieces], [0, 0]);
  });
});
