import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type ShardOptions, splitShards } from "./perf-shard.ts";

describe("splitShards", () => {
  const options: ShardOptions = {
    method: "GetUser",
    baseUrl: "http://127.0.0.1:9090",
    protocol: "grpc",
    tls: undefined,
    token: undefined,
    timeoutMs: 1000,
    concurrency: 10,
    connections: 3,
    userId: 1n,
    orderId: 0n,
    pageSize: 10,
    requests: 1001,
  };

  it("gives each thread its connections, their workers and a share of the calls", () => {
    const shards = splitShards(options, 2);
    // Connections 0 and 2 to the first thread, 1 to the second; workers follow their connection.
    assert.deepEqual(
      shards.map((s) => [s.connections, s.concurrency, s.requests]),
      [
        [2, 7, 701],
        [1, 3, 300],
      ],
    );
  });

  it("splits a duration run without a number of calls", () => {
    const { requests: _, ...rest } = options;
    const shards = splitShards({ ...rest, durationMs: 500 }, 3);
    assert.deepEqual(
      shards.map((s) => [s.connections, s.concurrency, s.requests, s.durationMs]),
      [
        [1, 4, undefined, 500],
        [1, 3, undefined, 500],
        [1, 3, undefined, 500],
      ],
    );
  });
});
