import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  Code,
  ConnectError,
  createClient,
  createRouterTransport,
  type Transport,
} from "@connectrpc/connect";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { type BalancedEndpoint, createBalancingTransport } from "./balancer.ts";
import { createCircuitBreaker } from "./circuit-breaker.ts";
import { wasNeverSent } from "./endpoint-errors.ts";
import type { EndpointHealth } from "./endpoint-health.ts";
import type { BalancingPolicy } from "./pickers.ts";

/**
 * A health whose availability the test sets (`up`: false means the server says NOT_SERVING,
 * `reachable`: false that its connection failed), recording the connection failures reported.
 */
function fakeHealth(): EndpointHealth & { up: boolean; reachable: boolean; failures: string[] } {
  const failures: string[] = [];
  const state = { up: true, reachable: true };
  return {
    get up() {
      return state.up;
    },
    set up(value: boolean) {
      state.up = value;
    },
    get reachable() {
      return state.reachable;
    },
    set reachable(value: boolean) {
      state.reachable = value;
    },
    failures,
    available: () => state.up && state.reachable,
    status: () => ({
      connectivity: state.reachable ? "idle" : "transient_failure",
      health: state.up ? "unknown" : "not_serving",
      ...(state.up && state.reachable ? {} : { reason: "down for the test" }),
    }),
    connectionFailed: (reason) => {
      failures.push(reason);
    },
    close() {},
  };
}

/** An endpoint answering GetUser with its name; `fail` makes it fail with that error instead. */
function endpoint(name: string) {
  const state: { fail?: () => Error; release?: () => void } = {};
  const transport = createRouterTransport((router) =>
    router.service(UserService, {
      getUser() {
        if (state.fail) throw state.fail();
        return { user: { username: name } };
      },
      async *streamUserActivities(_req, ctx) {
        yield { action: name };
        await new Promise<void>((resolve) => {
          state.release = resolve;
          ctx.signal.addEventListener("abort", () => resolve());
        });
      },
    }),
  );
  return { name, state, transport, health: fakeHealth() };
}

function balanced(
  policy: BalancingPolicy,
  names: string[],
  extra: (e: ReturnType<typeof endpoint>) => Partial<BalancedEndpoint> = () => ({}),
) {
  const endpoints = names.map(endpoint);
  const transport = createBalancingTransport({
    policy,
    random: () => 0,
    endpoints: endpoints.map((e) => ({
      url: `http://${e.name}`,
      transport: e.transport as Transport,
      health: e.health,
      ...extra(e),
    })),
  });
  const client = createClient(UserService, transport);
  const names10 = async (n = 6) => {
    const got: string[] = [];
    for (let i = 0; i < n; i++)
      got.push((await client.getUser({ userId: 1n })).user?.username ?? "");
    return got;
  };
  return { endpoints, transport, client, names: names10 };
}

describe("balancing transport", () => {
  it("round_robin spreads calls over every endpoint", async () => {
    const { names, transport } = balanced("round_robin", ["a", "b", "c"]);
    assert.deepEqual(await names(), ["a", "b", "c", "a", "b", "c"]);
    assert.deepEqual(
      transport.endpoints().map((e) => [e.url, e.calls, e.available]),
      [
        ["http://a", 2, true],
        ["http://b", 2, true],
        ["http://c", 2, true],
      ],
    );
  });

  it("leaves out an endpoint while its health says no, and takes it back after", async () => {
    const { names, endpoints } = balanced("round_robin", ["a", "b", "c"]);
    (endpoints[1] as ReturnType<typeof endpoint>).health.up = false;
    assert.deepEqual(await names(4), ["a", "c", "a", "c"]);
    (endpoints[1] as ReturnType<typeof endpoint>).health.up = true;
    assert.deepEqual(new Set(await names(3)), new Set(["a", "b", "c"]));
  });

  it("pick_first sends everything to the first available endpoint", async () => {
    const { names, endpoints } = balanced("pick_first", ["a", "b"]);
    assert.deepEqual(await names(3), ["a", "a", "a"]);
    (endpoints[0] as ReturnType<typeof endpoint>).health.up = false;
    assert.deepEqual(await names(2), ["b", "b"]);
  });

  it("feeds each endpoint's circuit breaker, and leaves out an endpoint whose circuit is open", async () => {
    const { client, names, endpoints, transport } = balanced("round_robin", ["a", "b"], () => ({
      breaker: createCircuitBreaker({ minimumRequests: 2, failureRate: 1, openMs: 60_000 }),
    }));
    const a = endpoints[0] as ReturnType<typeof endpoint>;
    a.state.fail = () => new ConnectError("overloaded", Code.Unavailable);
    const codes = [];
    for (let i = 0; i < 4; i++) {
      codes.push(
        await client.getUser({ userId: 1n }).then(
          () => "ok",
          (e) => ConnectError.from(e).code,
        ),
      );
    }
    assert.deepEqual(codes, [Code.Unavailable, "ok", Code.Unavailable, "ok"]);
    assert.deepEqual(
      transport.endpoints().map((e) => e.circuit),
      ["open", "closed"],
    );
    assert.deepEqual(await names(3), ["b", "b", "b"]);
    assert.equal(a.health.failures.length, 0, "an error the server sent is no connection failure");
  });

  it("tries endpoints out only for their connection when no endpoint is available", async () => {
    const { names, endpoints } = balanced("round_robin", ["a", "b", "c"]);
    const [a, b, c] = endpoints.map((e) => e.health);
    if (a === undefined || b === undefined || c === undefined) throw new Error("three endpoints");
    a.reachable = false;
    assert.deepEqual(new Set(await names(4)), new Set(["b", "c"]), "not while others are there");
    b.reachable = false;
    c.up = false;
    // Nothing is available: a and b may have recovered, c said NOT_SERVING.
    assert.deepEqual(new Set(await names(4)), new Set(["a", "b"]));
  });

  it("fails without sending when no endpoint is available, saying why", async () => {
    const { client, endpoints } = balanced("round_robin", ["a", "b"]);
    for (const e of endpoints) e.health.up = false;
    await assert.rejects(client.getUser({ userId: 1n }), (err: unknown) => {
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code, Code.Unavailable);
      assert.equal(
        err.rawMessage,
        "no endpoint is available: http://a (down for the test), http://b (down for the test)",
      );
      assert.equal(wasNeverSent(err), true);
      return true;
    });
  });

  it("reports a broken connection to the endpoint's health, as UNAVAILABLE naming it", async () => {
    const a = endpoint("a");
    a.state.fail = () => {
      const cause = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
      return new ConnectError(cause.message, Code.Aborted, undefined, undefined, cause);
    };
    const inner: Transport = a.transport;
    const failing: Transport = {
      // The router transport would serialize the error; a real one hands over its cause.
      unary: () => Promise.reject(a.state.fail?.()),
      stream: inner.stream,
    };
    const transport = createBalancingTransport({
      endpoints: [{ url: "http://a", transport: failing, health: a.health }],
    });
    await assert.rejects(
      createClient(UserService, transport).getUser({ userId: 1n }),
      (err: unknown) => {
        assert.ok(err instanceof ConnectError);
        assert.equal(err.code, Code.Unavailable);
        assert.equal(err.rawMessage, "http://a: read ECONNRESET");
        return true;
      },
    );
    assert.deepEqual(a.health.failures, ["http://a: read ECONNRESET"]);
  });

  it("least_request sends calls away from an endpoint busy with open streams, until they end", async () => {
    const { client, names, transport } = balanced("least_request", ["a", "b"]);
    const controller = new AbortController();
    const stream = client
      .streamUserActivities({ userId: 1n }, { signal: controller.signal })
      [Symbol.asyncIterator]();
    assert.equal((await stream.next()).value?.action, "a");
    assert.deepEqual(
      transport.endpoints().map((e) => e.inFlight),
      [1, 0],
    );
    assert.deepEqual(await names(3), ["b", "b", "b"]);
    controller.abort();
    assert.deepEqual(
      transport.endpoints().map((e) => e.inFlight),
      [0, 0],
    );
    assert.deepEqual(await names(1), ["a"]);
  });

  it("does not hold a cancelled call against the endpoint", async () => {
    const breaker = createCircuitBreaker({ minimumRequests: 1, failureRate: 1 });
    const { client, endpoints } = balanced("pick_first", ["a"], () => ({ breaker }));
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(client.getUser({ userId: 1n }, { signal: controller.signal }));
    assert.equal(breaker.state(), "closed");
    assert.deepEqual((endpoints[0] as ReturnType<typeof endpoint>).health.failures, []);
  });
});

describe("balancing transport with endpoints that change", () => {
  const at = (name: string, closed: string[] = []): BalancedEndpoint => ({
    url: `http://${name}`,
    transport: endpoint(name).transport as Transport,
    close: () => closed.push(name),
  });

  it("makes calls wait for the first endpoints, then spreads them over every update", async () => {
    const transport = createBalancingTransport({ endpoints: [], random: () => 0 });
    const client = createClient(UserService, transport);
    const waiting = client.getUser({ userId: 1n });
    transport.update([at("a")]);
    assert.equal((await waiting).user?.username, "a");
    const closed: string[] = [];
    transport.update([at("a", closed), at("b", closed)]);
    assert.deepEqual(closed, ["a"], "the second endpoint object for a known url is not kept");
    const got = [];
    for (let i = 0; i < 4; i++) got.push((await client.getUser({ userId: 1n })).user?.username);
    assert.deepEqual(got.sort(), ["a", "a", "b", "b"]);
  });

  it("closes a removed endpoint once its last call has ended", async () => {
    const closed: string[] = [];
    const a = at("a", closed);
    const transport = createBalancingTransport({
      endpoints: [a, at("b", closed)],
      random: () => 0,
    });
    const client = createClient(UserService, transport);
    const controller = new AbortController();
    const stream = client
      .streamUserActivities({ userId: 1n }, { signal: controller.signal })
      [Symbol.asyncIterator]();
    assert.equal((await stream.next()).value?.action, "a");
    transport.update([at("b")]);
    assert.deepEqual(
      transport.endpoints().map((e) => e.url),
      ["http://b"],
    );
    assert.deepEqual(closed, [], "a's stream is still open");
    controller.abort();
    await assert.rejects(stream.next());
    assert.deepEqual(closed, ["a"]);
  });

  it("fails waiting calls with UNAVAILABLE when the endpoints cannot be resolved", async () => {
    const transport = createBalancingTransport({ endpoints: [] });
    const client = createClient(UserService, transport);
    const waiting = client.getUser({ userId: 1n });
    transport.resolutionFailed("dns:///users.test:9090: no such name");
    for (const call of [waiting, client.getUser({ userId: 1n })]) {
      await assert.rejects(call, (err: unknown) => {
        assert.ok(err instanceof ConnectError);
        assert.equal(err.code, Code.Unavailable);
        assert.match(err.message, /no such name/);
        assert.ok(wasNeverSent(err));
        return true;
      });
    }
  });

  it("lets a call's deadline end its wait for endpoints", async () => {
    const transport = createBalancingTransport({ endpoints: [] });
    const client = createClient(UserService, transport);
    await assert.rejects(client.getUser({ userId: 1n }, { timeoutMs: 50 }), (err: unknown) => {
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code, Code.DeadlineExceeded);
      return true;
    });
  });
});
