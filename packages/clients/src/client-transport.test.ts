import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponse_ServingStatus as Serving,
} from "@keel/gen/health/v1/health_pb";
import { UserService } from "@keel/gen/user/v1/user_pb";
import {
  createClientMetrics,
  createHealthService,
  createServerMetrics,
  startTracing,
  type TracingOptions,
} from "@keel/observability";
import { createClientTransport } from "./client-transport.ts";
import { type FakeServer, startFakeServer } from "./testing/fake-server.ts";
import { createUserClient } from "./user-client.ts";

const servers: FakeServer[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

/** A UserService whose GetUser answers with the server's name, failing first `failures` times. */
async function userServer(name: string, options: { failures?: number; delayMs?: number } = {}) {
  let failures = options.failures ?? 0;
  const health = createHealthService({ services: [UserService.typeName] });
  const server = await startFakeServer((router) => {
    router.service(Health, health.service);
    router.service(UserService, {
      async getUser() {
        if (options.delayMs !== undefined) await sleep(options.delayMs);
        if (failures-- > 0) throw new ConnectError("warming up", Code.Unavailable);
        return { user: { username: name } };
      },
      async createUser(req) {
        return { user: { username: req.username } };
      },
      async *streamUserActivities(_req, ctx) {
        await sleep(300, undefined, { signal: ctx.signal }).catch(() => {});
        yield { action: name };
      },
    });
  });
  servers.push(server);
  return { server, health };
}

/** Waits until `condition` holds, for at most two seconds. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 2000;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await sleep(2);
  }
}

describe("client transport over real HTTP/2", () => {
  it("keeps baseUrl working, and runs the interceptors once per call whatever the attempts", async () => {
    const { server } = await userServer("a", { failures: 1 });
    const seen: string[] = [];
    const users = createUserClient({
      baseUrl: server.url,
      token: "secret-token",
      requestId: true,
      interceptors: [
        (next) => (req) => {
          seen.push(req.method.name);
          return next(req);
        },
      ],
    });
    const { user } = await users.getUser({ userId: 1n });
    assert.equal(user?.username, "a");
    assert.deepEqual(seen, ["GetUser"]);
    const [first, second] = server.calls;
    assert.equal(server.calls.length, 2);
    assert.equal(first?.header.get("authorization"), "Bearer secret-token");
    assert.match(first?.header.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
    assert.equal(second?.header.get("x-request-id"), first?.header.get("x-request-id"));
    assert.equal(second?.header.get("grpc-previous-rpc-attempts"), "1");
    await createUserClient({ baseUrl: server.url }).getUser({ userId: 1n });
    assert.equal(server.calls[2]?.header.get("x-request-id"), null, "none by default");
  });

  it("bounds all attempts of a call by its deadline, the default one or its own", async () => {
    const { server } = await userServer("slow", { failures: 1000, delayMs: 60 });
    const users = createUserClient({
      baseUrl: server.url,
      timeoutMs: 200,
      retry: { maxAttempts: 100, initialBackoffMs: 1, budget: false },
      circuitBreaker: false,
    });
    let started = Date.now();
    await assert.rejects(users.getUser({ userId: 1n }), (err: unknown) => {
      const code = ConnectError.from(err).code;
      return code === Code.DeadlineExceeded || code === Code.Unavailable;
    });
    let elapsed = Date.now() - started;
    assert.ok(elapsed >= 120 && elapsed < 400, `${elapsed} ms for a 200 ms deadline`);
    assert.ok(
      server.calls.length >= 2 && server.calls.length <= 4,
      `${server.calls.length} attempts`,
    );
    started = Date.now();
    await assert.rejects(users.getUser({ userId: 1n }, { timeoutMs: 70 }));
    elapsed = Date.now() - started;
    assert.ok(elapsed < 180, `${elapsed} ms for a 70 ms deadline`);
  });

  it("compresses requests with gzip when asked, and refuses messages over 4 MiB by default", async () => {
    const { server } = await userServer("a");
    const big = { userId: 1n, fields: ["x".repeat(4096)] };
    await createUserClient({ baseUrl: server.url, gzip: true }).getUser(big);
    await createUserClient({ baseUrl: server.url }).getUser(big);
    assert.deepEqual(
      server.calls.map((c) => c.header.get("grpc-encoding")),
      ["gzip", null],
    );
    const huge = { userId: 1n, fields: ["x".repeat(5 * 1024 * 1024)] };
    await assert.rejects(
      createUserClient({ baseUrl: server.url }).getUser(huge),
      (err: unknown) => {
        return ConnectError.from(err).code === Code.ResourceExhausted;
      },
    );
    assert.equal(server.calls.length, 2, "refused before sending, and not retried");
    await createUserClient({ baseUrl: server.url, maxMessageBytes: 8 << 20 }).getUser(huge);
    assert.equal(server.calls.length, 3);
  });

  it("sends HTTP/2 keepalive PINGs while a call is open", async () => {
    const { server } = await userServer("a");
    const users = createUserClient({ baseUrl: server.url, keepaliveIntervalMs: 50 });
    for await (const _ of users.streamUserActivities({ userId: 1n }));
    assert.ok(server.pings >= 2, `${server.pings} pings in 300 ms`);
    const quiet = await userServer("b");
    for await (const _ of createUserClient({ baseUrl: quiet.server.url }).streamUserActivities({
      userId: 1n,
    }));
    assert.equal(quiet.server.pings, 0, "the default interval is 30 s");
  });

  it("records client metrics once per call, in a registry or through given metrics", async () => {
    const { server } = await userServer("a", { failures: 1 });
    const metrics = createClientMetrics();
    const users = createUserClient({ baseUrl: server.url, metrics });
    await users.getUser({ userId: 1n });
    await users.getUser({ userId: 1n });
    const text = await metrics.registry.metrics();
    const labels = 'grpc_method="GetUser",grpc_service="user.v1.UserService",grpc_type="unary"';
    assert.match(text, new RegExp(`grpc_client_started_total\\{${labels}\\} 2\\n`));
    assert.match(text, new RegExp(`grpc_client_handled_total\\{grpc_code="OK",${labels}\\} 2\\n`));
    assert.equal(server.calls.length, 3, "three attempts, two calls");

    // A registry of the application's (here one holding server metrics) shared by two clients.
    const { registry } = createServerMetrics({ services: [], collectDefaultMetrics: false });
    await createUserClient({ baseUrl: server.url, metrics: { registry } }).getUser({ userId: 1n });
    await createUserClient({ baseUrl: server.url, metrics: { registry } }).getUser({ userId: 1n });
    assert.match(
      await registry.metrics(),
      new RegExp(`grpc_client_started_total\\{${labels}\\} 2\\n`),
    );
    assert.throws(
      () => createUserClient({ baseUrl: server.url, metrics: { registry: metrics.registry } }),
      /the registry has client metrics already: pass the createClientMetrics\(\) result/,
    );
  });

  it("propagates the trace context with tracing on: one client span for all attempts", async () => {
    // The SDK sets up tracing only with a span processor: this one collects the span names.
    const spans: string[] = [];
    const collect = {
      onStart() {},
      onEnd: (span: { name: string }) => spans.push(span.name),
      forceFlush: async () => {},
      shutdown: async () => {},
    };
    const tracing = startTracing({
      serviceName: "clients-test",
      samplingRatio: 1,
      spanProcessors: [collect as unknown as NonNullable<TracingOptions["spanProcessors"]>[number]],
    });
    try {
      const { server } = await userServer("a", { failures: 1 });
      await createUserClient({ baseUrl: server.url, tracing: true }).getUser({ userId: 1n });
      const [first, second] = server.calls.map((c) => c.header.get("traceparent"));
      assert.match(first ?? "", /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      assert.equal(second, first);
      assert.deepEqual(spans, ["user.v1.UserService/GetUser"]);
      await createUserClient({ baseUrl: server.url }).getUser({ userId: 1n });
      assert.equal(server.calls[2]?.header.get("traceparent"), null, "off by default");
    } finally {
      await tracing.shutdown();
    }
  });

  it("skips a refused endpoint, even for a write, and reports it", async () => {
    const { server } = await userServer("live");
    const dead = await userServer("dead");
    await dead.server.close();
    const transport = createClientTransport({
      endpoints: [dead.server.url, server.url],
      balancing: "pick_first",
    });
    const users = createClient(UserService, transport);
    const { user } = await users.createUser({ username: "ada" });
    assert.equal(user?.username, "ada", "a refused connection never sent the write: retried");
    const [deadStatus] = transport.endpoints();
    assert.equal(deadStatus?.available, false);
    assert.match(deadStatus?.reason ?? "", /ECONNREFUSED/);
    transport.close();
  });

  it("takes an endpoint whose health Watch says NOT_SERVING out of the rotation, and back", async () => {
    const a = await userServer("a");
    const b = await userServer("b");
    const transport = createClientTransport({
      endpoints: [a.server.url, b.server.url],
      healthCheck: { service: UserService.typeName },
    });
    const users = createClient(UserService, transport);
    const names = async () => {
      const got = new Set<string>();
      for (let i = 0; i < 6; i++)
        got.add((await users.getUser({ userId: 1n })).user?.username ?? "");
      return [...got].sort();
    };
    await until(() => a.health.watchers === 1 && b.health.watchers === 1, "both are watched");
    assert.deepEqual(await names(), ["a", "b"]);
    a.health.setStatus(UserService.typeName, Serving.NOT_SERVING);
    await until(() => transport.endpoints()[0]?.available === false, "a leaves");
    assert.deepEqual(await names(), ["b"]);
    a.health.setStatus(UserService.typeName, Serving.SERVING);
    await until(() => transport.endpoints()[0]?.available === true, "a is back");
    assert.deepEqual(await names(), ["a", "b"]);
    transport.close();
    await until(
      () => a.health.watchers === 0 && b.health.watchers === 0,
      "close() ends the Watches",
    );
  });

  it("reconnects after a GOAWAY without failing a call", async () => {
    const a = await userServer("a");
    const b = await userServer("b");
    const transport = createClientTransport({
      endpoints: [a.server.url, b.server.url],
      healthCheck: false,
    });
    const users = createClient(UserService, transport);
    for (let i = 0; i < 4; i++) await users.getUser({ userId: 1n });
    a.server.goaway();
    await until(() => transport.endpoints()[0]?.connectivity === "ready", "a reconnected");
    const names = [];
    for (let i = 0; i < 4; i++) names.push((await users.getUser({ userId: 1n })).user?.username);
    assert.deepEqual([...new Set(names)].sort(), ["a", "b"]);
  });

  it("refuses options without an endpoint", () => {
    assert.throws(() => createClientTransport({}), /set endpoints \(or baseUrl\)/);
    assert.throws(() => createClientTransport({ endpoints: [] }), /set endpoints/);
  });
});
