import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GrpcMessageCounter } from "./grpc-frame.ts";
import {
  openLoopRate,
  protocolRows,
  selectRows,
  streamingRpcs,
  streamRows,
} from "./protocol-rows.ts";

describe("selectRows", () => {
  it("takes every row without --only", () => {
    const all = selectRows(undefined);
    assert.equal(all.unary.length, protocolRows.length);
    assert.equal(all.stream.length, streamingRpcs.length * 2);
    assert.deepEqual(
      all.openLoop.map((r) => r.id),
      ["open-loop-grpc", "open-loop-connect-json"],
    );
  });

  it("takes the rows named, of each kind", () => {
    const some = selectRows(["connect-json", "bidi-stream-connect", "open-loop-connect-json"]);
    assert.deepEqual(
      some.unary.map((r) => r.id),
      ["connect-json"],
    );
    assert.deepEqual(
      some.stream.map((r) => [r.rpc.id, r.protocol.id]),
      [["bidi-stream", "connect"]],
    );
    assert.equal(some.openLoop[0]?.row.id, "connect-json");
  });

  it("refuses an unknown row, and an open loop without its closed-loop row", () => {
    assert.throws(() => selectRows(["grcp"]), /no row "grcp"; rows: grpc, grpc-web/);
    assert.throws(() => selectRows(["open-loop-grpc"]), /open-loop-grpc needs grpc/);
  });
});

describe("openLoopRate", () => {
  it("offers half the capacity, in whole calls a second", () => {
    assert.equal(openLoopRate(8031), 4016);
  });

  it("offers at least one call a second", () => {
    assert.equal(openLoopRate(0), 1);
  });
});

describe("streamRows", () => {
  it("has each RPC over gRPC and over Connect, with ids of their own", () => {
    assert.equal(new Set(streamRows.map((r) => r.id)).size, streamRows.length);
    assert.ok(streamRows.some((r) => r.id === "client-stream-connect"));
  });

  it("sends one request to a server stream and reads the messages asked for", () => {
    const call = streamRows[0]?.rpc.call(7n, 30);
    const counter = new GrpcMessageCounter();
    counter.push(Buffer.from(call?.bodyBase64 ?? "", "base64"));
    assert.equal(counter.count, 1);
    assert.equal(call?.messagesPerStream, 30);
    assert.notEqual(call?.endsItself, true);
  });

  it("sends the messages asked for to client and bidi streams, which end by themselves", () => {
    for (const rpc of streamingRpcs.filter((r) => r.id !== "server-stream")) {
      const call = rpc.call(7n, 30);
      const counter = new GrpcMessageCounter();
      counter.push(Buffer.from(call.bodyBase64, "base64"));
      assert.equal(counter.count, 30, rpc.id);
      assert.equal(call.endsItself, true, rpc.id);
      assert.equal(call.messagesPerCall ?? call.messagesPerStream, 30, rpc.id);
    }
  });
});
