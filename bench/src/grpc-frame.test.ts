import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { GetUserRequestSchema } from "@keel/gen/user/v1/user_pb";
import { GrpcMessageCounter, grpcFrame } from "./grpc-frame.ts";

describe("grpcFrame", () => {
  it("prefixes the message with a zero flag and its length, big endian", () => {
    const frame = grpcFrame(GetUserRequestSchema, { userId: 300n });
    assert.equal(frame[0], 0);
    assert.equal(frame.readUInt32BE(1), frame.length - 5);
    assert.equal(fromBinary(GetUserRequestSchema, frame.subarray(5)).userId, 300n);
  });
});

describe("GrpcMessageCounter", () => {
  const three = Buffer.concat([
    grpcFrame(GetUserRequestSchema, { userId: 1n }),
    grpcFrame(GetUserRequestSchema, {}),
    grpcFrame(GetUserRequestSchema, { userId: 123456789n, fields: ["username"] }),
  ]);

  it("counts messages in one chunk", () => {
    const counter = new GrpcMessageCounter();
    assert.equal(counter.push(three), 3);
  });

  it("counts messages split at every possible place", () => {
    for (let size = 1; size <= three.length; size++) {
      const counter = new GrpcMessageCounter();
      for (let at = 0; at < three.length; at += size) counter.push(three.subarray(at, at + size));
      assert.equal(counter.count, 3, `chunks of ${size} bytes`);
    }
  });
});

describe("GrpcMessageCounter on a Connect stream", () => {
  const status = Buffer.from(JSON.stringify({ error: { code: "not_found", message: "no user" } }));
  const end = Buffer.alloc(5 + status.length);
  end.writeUInt8(0x02, 0);
  end.writeUInt32BE(status.length, 1);
  end.set(status, 5);
  const stream = Buffer.concat([
    grpcFrame(GetUserRequestSchema, { userId: 1n }),
    grpcFrame(GetUserRequestSchema, { userId: 2n }),
    end,
  ]);

  it("counts the messages, not the end-of-stream message, and keeps its JSON", () => {
    for (let size = 1; size <= stream.length; size++) {
      const counter = new GrpcMessageCounter();
      for (let at = 0; at < stream.length; at += size) counter.push(stream.subarray(at, at + size));
      assert.equal(counter.count, 2, `chunks of ${size} bytes`);
      assert.deepEqual(JSON.parse(String(counter.endOfStream)), {
        error: { code: "not_found", message: "no user" },
      });
    }
  });

  it("has no end-of-stream message before it arrived whole", () => {
    const counter = new GrpcMessageCounter();
    counter.push(stream.subarray(0, stream.length - 1));
    assert.equal(counter.count, 2);
    assert.equal(counter.endOfStream, undefined);
  });
});
