import assert from "node:assert/strict";
import * as net from "node:net";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  type CallOptions,
  type Client,
  Code,
  ConnectError,
  createClient,
  createRouterTransport,
  type Interceptor,
} from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { RetryInfoSchema } from "@keel/gen/errdetails/v1/errdetails_pb";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { peerKey, principalKey } from "./context.ts";
import { createRateLimiter, createRateLimitInterceptor, type RateLimits } from "./rate-limit.ts";
import { messages, protocols, startTestService } from "./testing/test-service.ts";

type UserClient = Client<typeof UserService>;

/** Test-only stand-in for authentication: the principal (and, in memory, the peer) from headers. */
const fromTestHeaders: Interceptor = (next) => (req) => {
  const subject = req.header.get("x-test-subject");
  if (subject !== null) {
    const principal = { subject, userId: undefined, roles: [], tokenId: undefined };
    req.contextValues.set(principalKey, principal);
  }
  const peer = req.header.get("x-test-peer");
  if (peer !== null) req.contextValues.set(peerKey, peer);
  return next(req);
};

const as = (subject?: string, peer?: string): CallOptions => ({
  headers: {
    ...(subject === undefined ? {} : { "x-test-subject": subject }),
    ...(peer === undefined ? {} : { "x-test-peer": peer }),
  },
});

/** One call of each kind, by the method it calls; streams are read to the end. */
type Call = (client: UserClient, options: CallOptions) => Promise<unknown>;
const calls = {
  GetUser: (client, options) => client.getUser({ userId: 1n }, options),
  StreamUserActivities: async (client, options) => {
    for await (const _ of client.streamUserActivities({ userId: 1n }, options));
  },
  BatchUpdateUsers: (client, options) =>
    client.batchUpdateUsers(messages([{ userId: 1n }, { userId: 2n }]), options),
  SyncUserStatus: async (client, options) => {
    for await (const _ of client.syncUserStatus(
      messages([{ userId: 1n }, { userId: 2n }]),
      options,
    ));
  },
} satisfies Record<string, Call>;

async function rejection(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    assert.ok(err instanceof ConnectError, `expected a ConnectError, got ${String(err)}`);
    return err;
  }
  assert.fail("the call was expected to be rate limited");
}

/** Asserts the error is a complete rate limit error and returns its retry delay in ms. */
function retryDelayMs(err: ConnectError, method: string): number {
  assert.equal(err.code, Code.ResourceExhausted, err.message);
  const pattern = `^rate limit of [\\d.]+ requests? per (second|minute) for user\\.v1\\.UserService/${method} exceeded; retry in \\d+\\.\\ds$`;
  assert.match(err.rawMessage, new RegExp(pattern));
  const [info] = err.findDetails(RetryInfoSchema);
  assert.ok(info?.retryDelay, "the error carries a RetryInfo detail");
  const ms = Number(info.retryDelay.seconds) * 1000 + info.retryDelay.nanos / 1e6;
  assert.equal(err.metadata.get("retry-after"), String(Math.ceil(ms / 1000)));
  return ms;
}

/**
 * Calls until one is rejected. Sequential calls drain a 10/s bucket as long as each takes less
 * than 100ms, which keeps this stable on a noisy machine; returns how many passed and the error.
 */
async function drain(call: () => Promise<unknown>) {
  for (let passed = 0; passed < 50; passed++) {
    try {
      await call();
    } catch (err) {
      assert.ok(err instanceof ConnectError, `expected a ConnectError, got ${String(err)}`);
      return { passed, err };
    }
  }
  assert.fail("50 calls in a row were not rate limited");
}

describe("rate limit interceptor against a real server", () => {
  const login = "user.v1.UserService/Login";
  let service: Awaited<ReturnType<typeof startTestService>>;
  before(async () => {
    service = await startTestService([
      fromTestHeaders,
      createRateLimitInterceptor({
        limits: {
          default: { ratePerSecond: 10, burst: 2 },
          methods: { [login]: { ratePerSecond: 0.1, burst: 2 } },
        },
        keyBy: { [login]: "peer" },
      }),
    ]);
  });
  after(() => service.close());

  /** A Connect client whose connection comes from another loopback address, i.e. another peer. */
  const fromOtherPeer = () =>
    createClient(
      UserService,
      createConnectTransport({
        baseUrl: service.url,
        httpVersion: "2",
        nodeOptions: {
          createConnection: (url: URL) =>
            net.connect({ host: url.hostname, port: Number(url.port), localAddress: "127.0.0.2" }),
        },
      }),
    );

  for (const protocol of protocols) {
    describe(protocol, () => {
      for (const [method, call] of Object.entries(calls)) {
        it(`${method}: over the burst fails with a retry delay, and passes after it`, async () => {
          const client = service.client(protocol);
          const options = as(`${protocol}-${method}`);
          const { passed, err } = await drain(() => call(client, options));
          assert.ok(passed >= 2, `the burst of 2 passes, got ${passed}`);
          const delay = retryDelayMs(err, method);
          assert.ok(delay > 0 && delay <= 100, `one token at 10/s is at most 100ms away: ${delay}`);
          await sleep(delay + 10);
          await call(client, options);
        });
      }
    });
  }

  it("keeps a bucket per principal and per method", async () => {
    const client = service.client("grpc");
    const { err } = await drain(() => calls.GetUser(client, as("alice")));
    retryDelayMs(err, "GetUser");
    await client.getUser({ userId: 1n }, as("bob"));
    await calls.StreamUserActivities(client, as("alice"));
  });

  it("keys anonymous callers by peer address, across protocols", async () => {
    const grpc = service.client("grpc");
    const connect = service.client("connect");
    // Both connections open first (as a signed-in caller, another bucket): a new connection's
    // setup on a busy machine can take longer than the 100 ms a token takes to come back.
    await connect.getUser({ userId: 1n }, as("warm-up"));
    const { err } = await drain(() => grpc.getUser({ userId: 1n }));
    retryDelayMs(err, "GetUser");
    retryDelayMs(await rejection(connect.getUser({ userId: 1n })), "GetUser");
    await fromOtherPeer().getUser({ userId: 1n });
  });

  it("limits Login per peer even for callers with a principal", async () => {
    const client = service.client("grpc-web");
    await client.login({}, as("mallory-1"));
    await client.login({}, as("mallory-2"));
    const err = await rejection(client.login({}, as("mallory-3")));
    assert.ok(retryDelayMs(err, "Login") > 9000, "one token at 0.1/s is ~10s away");
    assert.match(err.rawMessage, /rate limit of 6 requests per minute/);
    assert.equal(err.metadata.get("retry-after"), "10");
    await fromOtherPeer().login({}, as("mallory-3"));
  });
});

describe("rate limiter with a fake clock", () => {
  let t = 0;
  const clientOf = (interceptor: Interceptor) =>
    createClient(
      UserService,
      createRouterTransport(
        (router) =>
          router.service(UserService, {
            getUser: () => ({}),
            listUsers: () => ({}),
          }),
        { router: { interceptors: [fromTestHeaders, interceptor] } },
      ),
    );
  const limited = async (client: UserClient, options = as("alice")) =>
    retryDelayMs(await rejection(client.getUser({}, options)), "GetUser");

  it("refills at the rate up to the burst, and says how long to wait", async () => {
    t = 0;
    const { interceptor } = createRateLimiter({
      limits: { default: { ratePerSecond: 2, burst: 3 } },
      now: () => t,
    });
    const client = clientOf(interceptor);
    for (let i = 0; i < 3; i++) await client.getUser({}, as("alice"));
    assert.equal(await limited(client), 500);
    t = 250;
    const err = await rejection(client.getUser({}, as("alice")));
    assert.equal(retryDelayMs(err, "GetUser"), 250);
    assert.match(err.rawMessage, /retry in 0\.3s$/);
    assert.equal(err.metadata.get("retry-after"), "1");
    t = 500;
    await client.getUser({}, as("alice"));
    assert.equal(await limited(client), 500);
    // Long idle: the bucket holds at most the burst.
    t = 60_000;
    for (let i = 0; i < 3; i++) await client.getUser({}, as("alice"));
    assert.equal(await limited(client), 500);
  });

  it("rounds retry-after up to whole seconds and fills RetryInfo exactly", async () => {
    t = 0;
    const { interceptor } = createRateLimiter({
      limits: { default: { ratePerSecond: 0.4, burst: 1 } },
      now: () => t,
    });
    const client = clientOf(interceptor);
    await client.getUser({}, as("alice"));
    const err = await rejection(client.getUser({}, as("alice")));
    assert.equal(err.metadata.get("retry-after"), "3");
    assert.match(err.rawMessage, /retry in 2\.5s$/);
    const [info] = err.findDetails(RetryInfoSchema);
    assert.equal(info?.retryDelay?.seconds, 2n);
    assert.equal(info?.retryDelay?.nanos, 500_000_000);
  });

  it("tells principals from peers of the same name", async () => {
    t = 0;
    const { interceptor } = createRateLimiter({
      limits: { default: { ratePerSecond: 1, burst: 1 } },
      now: () => t,
    });
    const client = clientOf(interceptor);
    await client.getUser({}, as("10.0.0.1"));
    await client.getUser({}, as(undefined, "10.0.0.1"));
    await client.getUser({}, as(undefined, "10.0.0.2"));
    await limited(client, as(undefined, "10.0.0.1"));
    await limited(client, as("10.0.0.1"));
  });

  it("keeps at most maxKeys buckets, evicting idle ones first", async () => {
    t = 0;
    const limiter = createRateLimiter({
      limits: { default: { ratePerSecond: 1, burst: 2 } },
      maxKeys: 3,
      now: () => t,
    });
    const client = clientOf(limiter.interceptor);
    await client.getUser({}, as("busy"));
    await client.getUser({}, as("busy"));
    await client.getUser({}, as("idle"));
    t = 1000; // "idle" is full again, "busy" has 1 of 2 tokens
    await client.getUser({}, as("third"));
    assert.equal(limiter.size, 3);
    await client.getUser({}, as("fourth"));
    assert.ok(limiter.size <= 3);
    // "busy" kept its bucket: a fresh one would let two calls through.
    await client.getUser({}, as("busy"));
    await limited(client, as("busy"));
    // With no idle bucket left, the oldest make room; the map never grows past maxKeys.
    for (let i = 0; i < 20; i++) {
      await client.getUser({}, as(`caller-${i}`));
      assert.ok(limiter.size <= 3, `size ${limiter.size}`);
    }
  });

  it("applies update() to the next call, for methods already seen too", async () => {
    t = 0;
    const limiter = createRateLimiter({
      limits: { default: { ratePerSecond: 1, burst: 1 } },
      now: () => t,
    });
    const client = clientOf(limiter.interceptor);
    await client.getUser({}, as("alice"));
    t = 100;
    assert.equal(await limited(client), 900);
    const faster: RateLimits = {
      default: { ratePerSecond: 1, burst: 1 },
      methods: { "user.v1.UserService/GetUser": { ratePerSecond: 10, burst: 5 } },
    };
    limiter.update(faster);
    t = 200; // 0.1 tokens + 0.1s at the new 10/s is a token; at the old 1/s it is 0.2
    await client.getUser({}, as("alice"));
    for (let i = 0; i < 5; i++) await client.getUser({}, as("bob"));
    const err = await rejection(client.getUser({}, as("bob")));
    assert.match(err.rawMessage, /rate limit of 10 requests per second/);
    limiter.update({ default: { ratePerSecond: 1, burst: 1 } });
    t = 10_000;
    await client.getUser({}, as("bob"));
    await limited(client, as("bob"));
  });

  it("rejects limits that cannot work", () => {
    const bad = [
      { default: { ratePerSecond: 0, burst: 1 } },
      { default: { ratePerSecond: 1, burst: 0.5 } },
      { default: { ratePerSecond: 1, burst: Number.POSITIVE_INFINITY } },
      {
        default: { ratePerSecond: 1, burst: 1 },
        methods: { "/user.v1.UserService/Login": { ratePerSecond: 1, burst: 1 } },
      },
    ];
    for (const limits of bad) assert.throws(() => createRateLimiter({ limits }), RangeError);
    assert.throws(
      () => createRateLimiter({ limits: { default: { ratePerSecond: 1, burst: 1 } }, maxKeys: 0 }),
      RangeError,
    );
  });
});
