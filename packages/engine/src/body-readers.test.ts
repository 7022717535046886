import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { parseTimeout as parseConnectTimeout } from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeout } from "@connectrpc/connect/protocol-grpc";
import fc from "fast-check";
import { Base64EnvelopeReader, WholeBodyReader } from "./body-readers.ts";
import type { BodyReader, Envelope } from "./envelope-reader.ts";

/** `bytes` cut at `cuts` (offsets, any order, duplicates allowed). */
function chunks(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const to of [...at, bytes.length]) {
    out.push(bytes.subarray(from, to));
    from = to;
  }
  return out;
}

/** Feeds every chunk and ends the body; what came out, or the ConnectError that stopped it. */
function read(reader: BodyReader, parts: Buffer[]): Envelope[] | ConnectError {
  const out: Envelope[] = [];
  try {
    for (const part of parts) reader.push(part, out);
    if (!reader.complete) return new ConnectError("incomplete", Code.InvalidArgument);
    reader.end?.(out);
    return out;
  } catch (err) {
    assert.ok(err instanceof ConnectError, `not a ConnectError: ${String(err)}`);
    return err;
  }
}

function envelopeOf(flags: number, data: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + data.length);
  out[0] = flags;
  out.writeUInt32BE(data.length, 1);
  out.set(data, 5);
  return out;
}

describe("gRPC-Web text reader", () => {
  it("gives back the envelopes, encoded whole or each apart, however the text is cut", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 100 }), { maxLength: 5 }),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 12 }),
        (messages, apart, cuts) => {
          const frames = messages.map((m) => envelopeOf(0, m));
          const text = apart
            ? frames.map((f) => f.toString("base64")).join("")
            : Buffer.concat(frames).toString("base64");
          const out = read(new Base64EnvelopeReader(1000), chunks(Buffer.from(text), cuts));
          assert.ok(!(out instanceof ConnectError), String(out));
          assert.deepEqual(
            out.map((e) => Buffer.from(e.data)),
            messages.map((m) => Buffer.from(m)),
          );
        },
      ),
    );
  });

  it("never throws anything but a ConnectError on arbitrary bytes", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 400 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (bytes, cuts) => {
          read(new Base64EnvelopeReader(64), chunks(Buffer.from(bytes), cuts));
        },
      ),
    );
  });
});

describe("whole-body reader (Connect unary)", () => {
  it("gives back the body, within the limit and its content-length, however it is cut", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.option(fc.integer({ min: 0, max: 400 }), { nil: undefined }),
        (body, cuts, declared) => {
          const length = declared === undefined ? undefined : String(declared);
          let reader: WholeBodyReader;
          try {
            reader = new WholeBodyReader(256, length, 0);
          } catch (err) {
            // Only a declared length above the limit is refused before reading.
            assert.equal((err as ConnectError).code, Code.ResourceExhausted);
            assert.ok((declared ?? 0) > 256);
            return;
          }
          const out = read(reader, chunks(Buffer.from(body), cuts));
          const expected =
            body.length > 256
              ? Code.ResourceExhausted
              : declared !== undefined && declared !== body.length
                ? Code.InvalidArgument
                : undefined;
          if (expected === undefined) {
            assert.ok(!(out instanceof ConnectError), String(out));
            assert.deepEqual(Buffer.from(out[0]?.data ?? []), Buffer.from(body));
          } else {
            assert.ok(out instanceof ConnectError);
            // A body both over its length and over the limit may be told either.
            if (body.length <= 256) assert.equal(out.code, expected);
          }
        },
      ),
    );
  });
});

describe("timeout parsers", () => {
  it("answer a timeout or an error for any header value, never throw", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), (value) => {
        for (const parse of [parseGrpcTimeout, parseConnectTimeout]) {
          const result = parse(value, Number.MAX_SAFE_INTEGER);
          if (result.error === undefined) {
            assert.ok(result.timeoutMs === undefined || result.timeoutMs >= 0);
          } else {
            assert.equal(result.error.code, Code.InvalidArgument);
          }
        }
      }),
    );
  });
});
