import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EnvelopeReader, envelope } from "./envelope-reader.ts";

describe("EnvelopeReader", () => {
  const body = Buffer.concat([
    envelope(0, Buffer.from("first")),
    envelope(0, Buffer.alloc(0)),
    envelope(1, Buffer.alloc(300, 7)),
    envelope(0x80, Buffer.from("grpc-status:0\r\n")),
  ]);

  it("counts messages and keeps the last frame, however the body is split", () => {
    for (let size = 1; size <= body.length; size += size < 8 ? 1 : 37) {
      const reader = new EnvelopeReader();
      for (let i = 0; i < body.length; i += size) reader.push(body.subarray(i, i + size));
      assert.equal(reader.messages, 3, `chunks of ${size}`);
      assert.equal(reader.last?.toString(), "grpc-status:0\r\n", `chunks of ${size}`);
    }
  });

  it("starts afresh after reset", () => {
    const reader = new EnvelopeReader();
    reader.push(body.subarray(0, 7));
    reader.reset();
    reader.push(envelope(0x02, Buffer.from("{}")));
    assert.equal(reader.messages, 0);
    assert.equal(reader.last?.toString(), "{}");
  });
});
