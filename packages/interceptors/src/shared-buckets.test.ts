import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  Code,
  ConnectError,
  createClient,
  createRouterTransport,
  type Interceptor,
} from "@connectrpc/connect";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { principalKey } from "./context.ts";
import type { Limit } from "./rate-limit.ts";
import { createRateLimiter } from "./rate-limit.ts";
import { createSharedBuckets, type TokenSource } from "./shared-buckets.ts";

/**
 * A token bucket per key in memory, standing in for the database's table: what it hands out is
 * counted, and it can be made to fail or to hang.
 */
function memorySource(clock: { t: number }) {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const state = { roundTrips: 0, granted: 0, mode: "ok" as "ok" | "fail" | "hang" };
  const source: TokenSource = {
    take(key: string, limit: Limit, count: number) {
      state.roundTrips++;
      if (state.mode === "fail") return Promise.reject(new Error("connection refused"));
      if (state.mode === "hang") return new Promise(() => {});
      const bucket = buckets.get(key) ?? { tokens: limit.burst, at: clock.t };
      const perMs = limit.ratePerSecond / 1000;
      const tokens = Math.min(limit.burst, bucket.tokens + (clock.t - bucket.at) * perMs);
      const granted = Math.min(count, Math.floor(tokens));
      buckets.set(key, { tokens: tokens - granted, at: clock.t });
      state.granted += granted;
      const waitMs = granted < count ? (1 - (tokens - granted)) / perMs : 0;
      return Promise.resolve({ granted, waitMs });
    },
  };
  return { source, state };
}

const asAlice: Interceptor = (next) => (req) => {
  req.contextValues.set(principalKey, {
    subject: "alice",
    userId: undefined,
    roles: [],
    tokenId: undefined,
  });
  return next(req);
};

function clientOf(limit: Limit, shared: ReturnType<typeof createSharedBuckets>, now: () => number) {
  const limiter = createRateLimiter({ limits: { default: limit }, shared, now });
  return createClient(
    UserService,
    createRouterTransport((router) => router.service(UserService, { getUser: () => ({}) }), {
      router: { interceptors: [asAlice, limiter.interceptor] },
    }),
  );
}

async function codes(calls: Promise<unknown>[]): Promise<string[]> {
  return Promise.all(
    calls.map((call) =>
      call.then(
        () => "ok",
        (err: unknown) => Code[ConnectError.from(err).code],
      ),
    ),
  );
}

describe("shared rate limits", () => {
  it("reserves tokens in growing batches: fewer round trips than calls, never more calls than tokens", async () => {
    const clock = { t: 0 };
    const { source, state } = memorySource(clock);
    const now = () => clock.t;
    const shared = createSharedBuckets({ source, maxBatch: 8, now });
    const client = clientOf({ ratePerSecond: 0.001, burst: 100 }, shared, now);
    const outcomes: string[] = [];
    for (let i = 0; i < 120; i++) outcomes.push(...(await codes([client.getUser({})])));
    assert.equal(outcomes.filter((o) => o === "ok").length, 100);
    assert.deepEqual(outcomes.slice(100), Array(20).fill("ResourceExhausted"));
    assert.equal(state.granted, 100);
    // Batches of 1, 2, 4, then 8: 16 round trips for 100 calls; the refusals that follow cost
    // one more round trip, the rest are refused locally until the next token is due.
    assert.ok(state.roundTrips <= 18, `${state.roundTrips} round trips`);
  });

  it("shares one budget between instances", async () => {
    const clock = { t: 0 };
    const { source } = memorySource(clock);
    const now = () => clock.t;
    const limit = { ratePerSecond: 0.001, burst: 30 };
    const a = clientOf(limit, createSharedBuckets({ source, now }), now);
    const b = clientOf(limit, createSharedBuckets({ source, now }), now);
    let ok = 0;
    for (let i = 0; i < 40; i++) {
      const [x, y] = await codes([a.getUser({}), b.getUser({})]);
      ok += Number(x === "ok") + Number(y === "ok");
    }
    assert.equal(ok, 30);
  });

  it("counts locally while the source fails, and tells when it fails and recovers", async () => {
    const clock = { t: 0 };
    const { source, state } = memorySource(clock);
    const now = () => clock.t;
    const changes: boolean[] = [];
    const shared = createSharedBuckets({
      source,
      now,
      onStateChange: (available) => changes.push(available),
    });
    const client = clientOf({ ratePerSecond: 0.001, burst: 3 }, shared, now);
    state.mode = "fail";
    assert.deepEqual(await codes([client.getUser({})]), ["ok"]);
    const tripsWhileDown = state.roundTrips;
    // The local bucket (burst 3) decides, and the source is left alone for a second.
    assert.deepEqual(await codes([client.getUser({}), client.getUser({}), client.getUser({})]), [
      "ok",
      "ok",
      "ResourceExhausted",
    ]);
    assert.equal(state.roundTrips, tripsWhileDown);
    state.mode = "ok";
    clock.t += 1001;
    assert.deepEqual(await codes([client.getUser({})]), ["ok"]);
    assert.deepEqual(changes, [false, true]);
  });

  it("refuses with UNAVAILABLE while the source hangs, when told to", async () => {
    const clock = { t: 0 };
    const { source, state } = memorySource(clock);
    const now = () => clock.t;
    const shared = createSharedBuckets({ source, now, timeoutMs: 20, whenUnavailable: "refuse" });
    const client = clientOf({ ratePerSecond: 100, burst: 100 }, shared, now);
    state.mode = "hang";
    const err = await client.getUser({}).catch((e: unknown) => ConnectError.from(e));
    assert.ok(err instanceof ConnectError);
    assert.equal(err.code, Code.Unavailable);
    assert.equal(err.rawMessage, "rate limits cannot be checked right now; retry shortly");
    // Refused at once now, without waiting for the source again.
    const trips = state.roundTrips;
    assert.deepEqual(await codes([client.getUser({})]), ["Unavailable"]);
    assert.equal(state.roundTrips, trips);
  });
});
