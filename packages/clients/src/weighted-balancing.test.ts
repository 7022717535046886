import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { Health } from "@keel/gen/health/v1/health_pb";
import { type ClientTransport, createClientTransport } from "./client-transport.ts";
import { type ServerProcess, startServerProcess } from "./testing/server-process.ts";

// Two keel server processes report their load (ORCA, every 200 ms); one has its event loop kept
// busy by real CPU work. weighted_round_robin must send it a small share of the calls, where
// round robin sends it half.
const busyLoop = fileURLToPath(new URL("./testing/busy-event-loop.ts", import.meta.url));
const env = {
  KEEL_LOAD_REPORT_INTERVAL_MS: "200",
  KEEL_RATE_LIMIT_RPS: "1000000",
  KEEL_RATE_LIMIT_BURST: "1000000",
};

/** Makes `total` Health checks, `concurrency` at a time; returns each endpoint's share of them. */
async function shares(t: ClientTransport, total: number, concurrency = 4) {
  const before = new Map(t.endpoints().map((e) => [e.url, e.calls]));
  const client = createClient(Health, t);
  let left = total;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (left-- > 0) await client.check({ service: "" });
    }),
  );
  return new Map(t.endpoints().map((e) => [e.url, (e.calls - (before.get(e.url) ?? 0)) / total]));
}

describe("weighted_round_robin against servers reporting their load", () => {
  let idle: ServerProcess;
  let busy: ServerProcess;
  const transports: ClientTransport[] = [];

  before(async () => {
    [idle, busy] = await Promise.all([
      startServerProcess(env),
      startServerProcess(env, { nodeArgs: ["--import", busyLoop] }),
    ]);
  });
  after(async () => {
    for (const t of transports) t.close();
    await Promise.all([idle?.kill(), busy?.kill()]);
  });

  it("sends most calls to the idle server once both have reported, and shows the weights", async () => {
    const t = createClientTransport({
      endpoints: [idle.url, busy.url],
      balancing: "weighted_round_robin",
      weightedRoundRobin: {
        blackoutPeriodMs: 3000,
        weightExpirationPeriodMs: 30_000,
        weightUpdatePeriodMs: 100,
      },
      retry: false,
    });
    transports.push(t);
    // Until weights are in use (the blackout period), calls alternate.
    const first = await shares(t, 20, 1);
    assert.deepEqual([...first.values()], [0.5, 0.5]);
    // Both endpoints report, and their weights come into use after the blackout period.
    for (let round = 0; t.endpoints().some((e) => e.weight === undefined); round++) {
      assert.ok(round < 200, `no weights after ${round} rounds: ${JSON.stringify(t.endpoints())}`);
      await shares(t, 40);
    }
    // Weights keep following the reports while calls go on; the busy server's share stays small.
    await shares(t, 200);
    const after = await shares(t, 400);
    const busyShare = after.get(busy.url) ?? 1;
    assert.ok(busyShare < 0.3, `the busy server had ${(busyShare * 100).toFixed(1)}% of calls`);
    assert.ok(busyShare > 0, "the busy server is still called (its weight is bounded below)");
    const [idleStatus, busyStatus] = t.endpoints();
    assert.ok(
      (idleStatus?.weight ?? 0) > 2 * (busyStatus?.weight ?? 0),
      `weights ${idleStatus?.weight} and ${busyStatus?.weight}`,
    );
  });

  it("round_robin, for comparison, sends each server half the calls", async () => {
    const t = createClientTransport({ endpoints: [idle.url, busy.url], retry: false });
    transports.push(t);
    const split = await shares(t, 200);
    assert.deepEqual([...split.values()], [0.5, 0.5]);
  });

  it("grpc-js's weighted_round_robin reads keel's load reports too", async () => {
    const port = (url: string) => new URL(url).port;
    const client = new grpc.Client(
      `ipv4:127.0.0.1:${port(idle.url)},127.0.0.1:${port(busy.url)}`,
      grpc.credentials.createInsecure(),
      {
        "grpc.service_config": JSON.stringify({
          loadBalancingConfig: [
            {
              weighted_round_robin: {
                blackoutPeriod: "1s",
                weightExpirationPeriod: "30s",
                weightUpdatePeriod: "0.1s",
              },
            },
          ],
        }),
      },
    );
    try {
      const check = () =>
        new Promise<string>((resolve, reject) => {
          const call = client.makeUnaryRequest(
            "/grpc.health.v1.Health/Check",
            (b: Buffer) => b,
            (b: Buffer) => b,
            Buffer.alloc(0),
            (err) => (err ? reject(err) : resolve(call.getPeer())),
          );
        });
      /** Each server's share of `total` calls, 4 at a time. */
      const split = async (total: number) => {
        const peers: string[] = [];
        let left = total;
        await Promise.all(
          Array.from({ length: 4 }, async () => {
            while (left-- > 0) peers.push(await check());
          }),
        );
        return peers.filter((p) => p.endsWith(`:${port(busy.url)}`)).length / total;
      };
      // Past the blackout period, with reports flowing, the busy server's share falls (calls
      // to it are slow while it has many: rounds are short).
      let busyShare = 1;
      for (let round = 0; busyShare >= 0.3 && round < 40; round++) busyShare = await split(50);
      // Not one lucky round: the next calls too.
      busyShare = await split(100);
      assert.ok(busyShare < 0.3, `the busy server had ${(busyShare * 100).toFixed(1)}% of calls`);
    } finally {
      client.close();
    }
  });
});
