import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import fc from "fast-check";
import { type Envelope, EnvelopeReader } from "./envelope-reader.ts";
import { envelope as writeEnvelope } from "./serve-call.ts";
import { chunks } from "./testing/chunks.ts";

function encode(envelopes: Envelope[]): Buffer {
  return Buffer.concat(
    envelopes.map(({ flags, data }) => {
      const prefix = Buffer.alloc(5);
      prefix[0] = flags;
      prefix.writeUInt32BE(data.length, 1);
      return Buffer.concat([prefix, data]);
    }),
  );
}

const envelope = fc.record({
  flags: fc.integer({ min: 0, max: 255 }),
  data: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
});

describe("envelope writer", () => {
  it("writes what connect's encodeEnvelope writes, for any flags and message up to past the pool's size", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        fc.uint8Array({ maxLength: 9000 }),
        (flags, data) => {
          const ours = writeEnvelope(data, null, 0, flags) as Uint8Array;
          assert.deepEqual(Buffer.from(ours), Buffer.from(encodeEnvelope(flags, data)));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("envelope reader", () => {
  it("gives back exactly the envelopes sent, however the body is cut into chunks", () => {
    fc.assert(
      fc.property(
        fc.array(envelope, { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (sent, cuts) => {
          const reader = new EnvelopeReader(1024);
          const got: Envelope[] = [];
          for (const chunk of chunks(encode(sent), cuts)) reader.push(chunk, got);
          assert.equal(reader.complete, true);
          assert.deepEqual(
            got.map((e) => [e.flags, Buffer.from(e.data).toString("hex")]),
            sent.map((e) => [e.flags, e.data.toString("hex")]),
          );
        },
      ),
    );
  });

  it("never crashes or holds more than a prefix promises, whatever the bytes", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 2000 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (bytes, cuts) => {
          const reader = new EnvelopeReader(256);
          const got: Envelope[] = [];
          try {
            for (const chunk of chunks(Buffer.from(bytes), cuts)) reader.push(chunk, got);
          } catch (err) {
            assert.ok(err instanceof ConnectError, String(err));
            assert.equal(err.code, Code.ResourceExhausted);
            assert.match(
              err.rawMessage,
              /^message size \d+ is larger than configured readMaxBytes 256$/,
            );
          }
          for (const e of got) assert.ok(e.data.length <= 256);
          // What is held is at most one prefix and one payload within the limit.
          assert.ok(reader.byteLength <= 5 + 256 + 5);
        },
      ),
    );
  });

  it("refuses an oversized message at its prefix, before its payload arrives", () => {
    const reader = new EnvelopeReader(1024);
    const prefix = Buffer.from([0, 0xff, 0xff, 0xff, 0xff]);
    assert.throws(
      () => reader.push(prefix, []),
      /message size 4294967295 is larger than configured readMaxBytes 1024/,
    );
  });

  it("tells a body that ended inside an envelope from one that ended between two", () => {
    const reader = new EnvelopeReader(1024);
    const got: Envelope[] = [];
    const body = encode([{ flags: 0, data: Buffer.from("abc") }]);
    reader.push(body.subarray(0, 6), got);
    assert.equal(reader.complete, false);
    reader.push(body.subarray(6), got);
    assert.equal(reader.complete, true);
    assert.equal(got.length, 1);
  });
});
