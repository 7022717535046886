import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { RetryInfoSchema } from "@keel/gen/errdetails/v1/errdetails_pb";
import { OrderService } from "@keel/gen/order/v1/order_pb";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { createOrderClient } from "./order-client.ts";
import { type FakeServer, startFakeServer } from "./testing/fake-server.ts";
import { createUserClient } from "./user-client.ts";

// Servers that fail on purpose, over real HTTP/2: the retry, budget and circuit-breaker
// behaviour a service sees from keel's clients in an outage.

const servers: FakeServer[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

/** A server whose UserService and OrderService fail with `failure()` while `state.failing`. */
async function failingServer(failure: () => ConnectError, delayMs = 0) {
  const state = { failing: true };
  const maybeFail = async () => {
    if (delayMs > 0) await sleep(delayMs);
    if (state.failing) throw failure();
  };
  const server = await startFakeServer((router) => {
    router.service(UserService, {
      async getUser(req) {
        await maybeFail();
        return { user: { userId: req.userId } };
      },
      async createUser(req) {
        await maybeFail();
        return { user: { username: req.username } };
      },
    });
    router.service(OrderService, {
      async createOrder(req) {
        await maybeFail();
        return { order: { userId: req.userId } };
      },
      async payOrder(req) {
        await maybeFail();
        return { order: { orderId: req.orderId } };
      },
    });
  });
  servers.push(server);
  return { server, state };
}

const unavailable = () => new ConnectError("overloaded", Code.Unavailable);

async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (err) {
    return Code[ConnectError.from(err).code] ?? "?";
  }
}

describe("against a server that fails on purpose", () => {
  it("never retries a write without an idempotency key; retries reads and keyed writes", async () => {
    const { server } = await failingServer(unavailable);
    const retry = { maxAttempts: 3, initialBackoffMs: 1 };
    const orders = createOrderClient({ baseUrl: server.url, retry, circuitBreaker: false });
    const users = createUserClient({ baseUrl: server.url, retry, circuitBreaker: false });

    assert.equal(await outcome(orders.createOrder({ userId: 1n })), "Unavailable");
    assert.equal(server.count("CreateOrder"), 1, "CreateOrder without a key: sent once");
    assert.equal(await outcome(users.createUser({ username: "ada" })), "Unavailable");
    assert.equal(server.count("CreateUser"), 1, "CreateUser: sent once");

    await outcome(orders.createOrder({ userId: 1n, idempotencyKey: "order-1" }));
    assert.equal(server.count("CreateOrder"), 4, "CreateOrder with a key: three attempts");
    await outcome(orders.payOrder({ orderId: 1n, idempotencyKey: "pay-1" }));
    assert.equal(server.count("PayOrder"), 3);
    await outcome(users.getUser({ userId: 1n }));
    assert.equal(server.count("GetUser"), 3);
  });

  it("keeps retries within the budget in an outage, however many attempts are allowed", async () => {
    const { server } = await failingServer(unavailable);
    const users = createUserClient({
      baseUrl: server.url,
      retry: {
        maxAttempts: 5,
        initialBackoffMs: 1,
        budget: { ratio: 0.2, minPerSecond: 1, windowMs: 10_000 },
      },
      circuitBreaker: false,
    });
    for (let i = 0; i < 50; i++)
      assert.equal(await outcome(users.getUser({ userId: 1n })), "Unavailable");
    // 50 calls; retries: a floor of 1/s × 10 s, plus 20% of 50 calls. Without a budget: 250.
    assert.equal(server.calls.length, 50 + 10 + 10);
  });

  it("opens the circuit on failures, fails fast, probes once after openMs, and closes", async () => {
    const { server, state } = await failingServer(unavailable, 20);
    const users = createUserClient({
      baseUrl: server.url,
      retry: false,
      circuitBreaker: { failureRate: 0.5, minimumRequests: 5, windowMs: 10_000, openMs: 300 },
    });
    const results = [];
    for (let i = 0; i < 20; i++) {
      results.push(
        await users.getUser({ userId: 1n }).then(
          () => "ok",
          (err: unknown) => ConnectError.from(err).rawMessage,
        ),
      );
    }
    assert.equal(server.calls.length, 5, "the circuit opened after 5 failures");
    assert.deepEqual(
      new Set(results.slice(5)),
      new Set([`no endpoint is available: ${server.url} (circuit open)`]),
    );

    await sleep(320);
    // Half-open: of five concurrent calls one is the probe; it fails, and the circuit opens again.
    const probes = await Promise.all(
      Array.from({ length: 5 }, () => outcome(users.getUser({ userId: 1n }))),
    );
    assert.equal(server.calls.length, 6);
    assert.deepEqual(probes.sort(), Array(5).fill("Unavailable"));

    state.failing = false;
    await sleep(320);
    assert.equal(await outcome(users.getUser({ userId: 1n })), "ok", "the probe succeeds");
    const after = await Promise.all(
      Array.from({ length: 5 }, () => outcome(users.getUser({ userId: 1n }))),
    );
    assert.deepEqual(after, Array(5).fill("ok"));
    assert.equal(server.calls.length, 12, "closed again: every call reaches the server");
  });

  it("waits out RESOURCE_EXHAUSTED for the server's RetryInfo delay when asked to", async () => {
    let refusals = 1;
    const server = await startFakeServer((router) =>
      router.service(UserService, {
        getUser(req) {
          if (refusals-- > 0) {
            throw new ConnectError(
              "rate limit exceeded; retry in 0.3s",
              Code.ResourceExhausted,
              { "retry-after": "1" },
              [{ desc: RetryInfoSchema, value: { retryDelay: durationFromMs(300) } }],
            );
          }
          return { user: { userId: req.userId } };
        },
      }),
    );
    servers.push(server);
    const patient = createUserClient({
      baseUrl: server.url,
      retry: { codes: [Code.Unavailable, Code.ResourceExhausted] },
    });
    const started = Date.now();
    assert.equal(await outcome(patient.getUser({ userId: 1n })), "ok");
    const waited = Date.now() - started;
    assert.ok(
      waited >= 300 && waited < 900,
      `waited ${waited} ms for a 300 ms RetryInfo (retry-after said 1 s)`,
    );

    refusals = 1;
    assert.equal(
      await outcome(createUserClient({ baseUrl: server.url }).getUser({ userId: 1n })),
      "ResourceExhausted",
    );
    assert.equal(server.calls.length, 3, "not retried by default");
  });
});
