import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  createClient,
  createRouterTransport,
  type Transport,
} from "@connectrpc/connect";
import { RetryInfoSchema } from "@keel/gen/errdetails/v1/errdetails_pb";
import { OrderService } from "@keel/gen/order/v1/order_pb";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { unsentError } from "./endpoint-errors.ts";
import { createRetryTransport, type RetryTransportOptions, serverRetryDelayMs } from "./retry.ts";

const unavailable = () => new ConnectError("try again", Code.Unavailable);

/** A rate-limit refusal as keel's server sends it. */
function rateLimited(delayMs: number, retryAfter?: string) {
  return new ConnectError(
    "rate limit exceeded",
    Code.ResourceExhausted,
    retryAfter === undefined ? undefined : { "retry-after": retryAfter },
    [{ desc: RetryInfoSchema, value: { retryDelay: durationFromMs(delayMs) } }],
  );
}

/**
 * An in-memory server whose calls fail with `failures`, one per call, then succeed; streams send
 * two messages, failing after the first when `failAfterFirst` is set.
 */
function flakyServer(failures: Error[], failAfterFirst = false) {
  const seen: Headers[] = [];
  const fail = (header: Headers) => {
    seen.push(header);
    const failure = failures.shift();
    if (failure !== undefined) throw failure;
  };
  const transport = createRouterTransport((router) => {
    router.service(UserService, {
      getUser(req, ctx) {
        fail(ctx.requestHeader);
        return { user: { userId: req.userId } };
      },
      async *streamUserActivities(req, ctx) {
        if (!failAfterFirst) fail(ctx.requestHeader);
        yield { userId: req.userId, action: "first" };
        if (failAfterFirst) fail(ctx.requestHeader);
        yield { userId: req.userId, action: "second" };
      },
      async batchUpdateUsers(requests, ctx) {
        for await (const _ of requests);
        fail(ctx.requestHeader);
        return {};
      },
    });
    router.service(OrderService, {
      createOrder(req, ctx) {
        fail(ctx.requestHeader);
        return { order: { userId: req.userId } };
      },
    });
  });
  return { transport, seen };
}

/** A retrying client with a fake clock whose sleeps only advance the clock and are recorded. */
function retrying(inner: Transport, options: RetryTransportOptions = {}) {
  const clock = { now: 1_000_000 };
  const delays: number[] = [];
  const transport = createRetryTransport(inner, {
    random: () => 0.5,
    now: () => clock.now,
    sleep: async (ms) => {
      delays.push(ms);
      clock.now += ms;
    },
    ...options,
  });
  return {
    users: createClient(UserService, transport),
    orders: createClient(OrderService, transport),
    delays,
    clock,
  };
}

async function code(promise: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await promise;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

describe("retry transport", () => {
  it("retries UNAVAILABLE on a read with exponential backoff and full jitter", async () => {
    const server = flakyServer([unavailable(), unavailable()]);
    const { users, delays } = retrying(server.transport, { maxAttempts: 3 });
    const { user } = await users.getUser({ userId: 7n });
    assert.equal(user?.userId, 7n);
    assert.equal(server.seen.length, 3);
    assert.deepEqual(delays, [50, 100], "half of 100 ms, then half of 200 ms");
    assert.equal(server.seen[0]?.get("grpc-previous-rpc-attempts"), null);
    assert.equal(server.seen[2]?.get("grpc-previous-rpc-attempts"), "2");
  });

  it("stops after maxAttempts and passes on the last error", async () => {
    const server = flakyServer([
      unavailable(),
      unavailable(),
      new ConnectError("last", Code.Unavailable),
    ]);
    const { users } = retrying(server.transport, { maxAttempts: 3 });
    await assert.rejects(users.getUser({ userId: 1n }), /\[unavailable\] last/);
    assert.equal(server.seen.length, 3);
  });

  it("caps the backoff at maxBackoffMs", async () => {
    const server = flakyServer([unavailable(), unavailable(), unavailable()]);
    const { users, delays } = retrying(server.transport, {
      maxAttempts: 4,
      initialBackoffMs: 1000,
      backoffMultiplier: 10,
      maxBackoffMs: 4000,
      random: () => 0.999,
    });
    await users.getUser({ userId: 1n });
    assert.deepEqual(delays.map(Math.round), [999, 3996, 3996]);
  });

  it("does not retry a write without an idempotency key, and retries one with a key", async () => {
    const unkeyed = flakyServer([unavailable()]);
    assert.equal(
      await code(retrying(unkeyed.transport).orders.createOrder({ userId: 1n })),
      Code.Unavailable,
    );
    assert.equal(unkeyed.seen.length, 1);

    const keyed = flakyServer([unavailable()]);
    const created = retrying(keyed.transport).orders.createOrder({
      userId: 1n,
      idempotencyKey: "k",
    });
    assert.equal(await code(created), "ok");
    assert.equal(keyed.seen.length, 2);
  });

  it("retries any call that never reached a server", async () => {
    const server = flakyServer([]);
    let refused = 1;
    const inner: Transport = {
      unary(...args) {
        if (refused-- > 0) return Promise.reject(unsentError("no endpoint is available"));
        return server.transport.unary(...args);
      },
      stream: (...args) => server.transport.stream(...args),
    };
    assert.equal(await code(retrying(inner).orders.createOrder({ userId: 1n })), "ok");
    assert.equal(server.seen.length, 1);
  });

  it("does not retry other codes", async () => {
    const server = flakyServer([new ConnectError("bug", Code.Internal)]);
    assert.equal(
      await code(retrying(server.transport).users.getUser({ userId: 1n })),
      Code.Internal,
    );
    assert.equal(server.seen.length, 1);
  });

  it("waits out RESOURCE_EXHAUSTED for the delay the server names, when asked to", async () => {
    const codes = [Code.Unavailable, Code.ResourceExhausted];
    const server = flakyServer([rateLimited(1500, "2")]);
    const { users, delays } = retrying(server.transport, { codes });
    assert.equal(await code(users.getUser({ userId: 1n })), "ok");
    assert.deepEqual(delays, [1500], "RetryInfo wins over retry-after");

    const bare = flakyServer([new ConnectError("message too large", Code.ResourceExhausted)]);
    assert.equal(
      await code(retrying(bare.transport, { codes }).users.getUser({ userId: 1n })),
      Code.ResourceExhausted,
    );
    assert.equal(bare.seen.length, 1, "no delay named: a limit, not a rate");

    const byDefault = flakyServer([rateLimited(10)]);
    assert.equal(
      await code(retrying(byDefault.transport).users.getUser({ userId: 1n })),
      Code.ResourceExhausted,
    );
    assert.equal(byDefault.seen.length, 1, "not among the default codes");
  });

  it("reads the server's delay from RetryInfo or retry-after", () => {
    const now = Date.parse("2030-01-01T00:00:00Z");
    assert.equal(serverRetryDelayMs(rateLimited(250)), 250);
    assert.equal(serverRetryDelayMs(rateLimited(-1)), -1);
    const header = (value: string) =>
      new ConnectError("slow down", Code.Unavailable, { "retry-after": value });
    assert.equal(serverRetryDelayMs(header("3")), 3000);
    assert.equal(serverRetryDelayMs(header("Tue, 01 Jan 2030 00:00:04 GMT"), now), 4000);
    assert.equal(serverRetryDelayMs(header("soon")), undefined);
    assert.equal(serverRetryDelayMs(unavailable()), undefined);
  });

  it("never retries past the deadline, and gives each attempt what is left of it", async () => {
    const server = flakyServer([rateLimited(1500)]);
    const { users, delays } = retrying(server.transport, {
      codes: [Code.ResourceExhausted],
    });
    assert.equal(
      await code(users.getUser({ userId: 1n }, { timeoutMs: 1000 })),
      Code.ResourceExhausted,
    );
    assert.deepEqual(delays, []);

    const timeouts: (number | undefined)[] = [];
    const failing = flakyServer([unavailable(), unavailable()]);
    const inner: Transport = {
      unary(method, signal, timeoutMs, ...rest) {
        timeouts.push(timeoutMs);
        return failing.transport.unary(method, signal, timeoutMs, ...rest);
      },
      stream: (...args) => failing.transport.stream(...args),
    };
    const slow = retrying(inner, { initialBackoffMs: 1000, maxAttempts: 5 });
    assert.equal(
      await code(slow.users.getUser({ userId: 1n }, { timeoutMs: 1000 })),
      Code.Unavailable,
    );
    // 500 ms of backoff, then 1000 ms would end past the deadline.
    assert.deepEqual(timeouts, [1000, 500]);
    assert.deepEqual(slow.delays, [500]);
  });

  it("stops retrying when the budget is spent", async () => {
    const failures = Array.from({ length: 100 }, unavailable);
    const server = flakyServer(failures);
    const { users } = retrying(server.transport, {
      maxAttempts: 5,
      budget: { ratio: 0.1, minPerSecond: 0.2, windowMs: 10_000 },
    });
    for (let i = 0; i < 10; i++) await code(users.getUser({ userId: 1n }));
    // 10 calls; 2 retries of the floor plus 10% of 10 calls.
    assert.equal(server.seen.length, 13);
  });

  it("retries a server stream that fails before its first message, not after", async () => {
    const before = flakyServer([unavailable()]);
    const { users } = retrying(before.transport);
    const actions = [];
    for await (const a of users.streamUserActivities({ userId: 1n })) actions.push(a.action);
    assert.deepEqual(actions, ["first", "second"]);
    assert.equal(before.seen.length, 2);

    const after = flakyServer([unavailable()], true);
    const received: string[] = [];
    await assert.rejects(async () => {
      for await (const a of retrying(after.transport).users.streamUserActivities({ userId: 1n }))
        received.push(a.action);
    }, /try again/);
    assert.deepEqual(received, ["first"]);
    assert.equal(after.seen.length, 1);
  });

  it("never retries a client stream", async () => {
    const server = flakyServer([unavailable()]);
    const { users } = retrying(server.transport);
    const updates = (async function* () {
      yield { userId: 1n };
    })();
    assert.equal(await code(users.batchUpdateUsers(updates)), Code.Unavailable);
    assert.equal(server.seen.length, 1);
  });

  it("does not retry a call cancelled while it failed", async () => {
    const controller = new AbortController();
    let attempts = 0;
    const inner: Transport = {
      async unary() {
        attempts++;
        controller.abort();
        throw unavailable();
      },
      stream: () => Promise.reject(unavailable()),
    };
    const { users } = retrying(inner);
    await assert.rejects(users.getUser({ userId: 1n }, { signal: controller.signal }));
    assert.equal(attempts, 1);
  });
});
