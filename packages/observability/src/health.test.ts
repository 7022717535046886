import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { setImmediate, setTimeout as sleep } from "node:timers/promises";
import {
  type Client,
  Code,
  ConnectError,
  createClient,
  createRouterTransport,
  type Transport,
} from "@connectrpc/connect";
import {
  connectNodeAdapter,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@keel/gen/health/v1/health_pb";
import { createHealthService, type HealthOptions, type HealthStatus } from "./health.ts";

type HealthClient = Client<typeof Health>;

function inMemory(options?: HealthOptions): { health: HealthStatus; client: HealthClient } {
  const health = createHealthService(options);
  const transport = createRouterTransport((router) => router.service(Health, health.service));
  return { health, client: createClient(Health, transport) };
}

async function checkError(client: HealthClient, service: string): Promise<ConnectError> {
  try {
    await client.check({ service });
  } catch (error) {
    return ConnectError.from(error);
  }
  assert.fail(`Check of "${service}" succeeded`);
}

async function statusOf(client: HealthClient, service: string) {
  return (await client.check({ service })).status;
}

describe("createHealthService", () => {
  it("serves the whole server and the given services, SERVING by default", async () => {
    const { client } = inMemory({ services: ["user.v1.UserService"] });
    assert.equal(await statusOf(client, ""), Status.SERVING);
    assert.equal(await statusOf(client, "user.v1.UserService"), Status.SERVING);
  });

  it("starts every known service with initialStatus", async () => {
    const { client } = inMemory({
      services: ["user.v1.UserService"],
      initialStatus: Status.NOT_SERVING,
    });
    assert.equal(await statusOf(client, ""), Status.NOT_SERVING);
    assert.equal(await statusOf(client, "user.v1.UserService"), Status.NOT_SERVING);
  });

  it("fails Check of an unknown service with NOT_FOUND", async () => {
    const { client } = inMemory();
    const error = await checkError(client, "nope.v1.Nope");
    assert.equal(error.code, Code.NotFound);
    assert.equal(error.rawMessage, 'unknown service "nope.v1.Nope"');
  });

  it("registers services with setStatus and changes them all with setAll", async () => {
    const { health, client } = inMemory();
    health.setStatus("order.v1.OrderService", Status.NOT_SERVING);
    assert.equal(await statusOf(client, "order.v1.OrderService"), Status.NOT_SERVING);
    assert.equal(await statusOf(client, ""), Status.SERVING);
    health.setAll(Status.NOT_SERVING);
    const { statuses } = await client.list({});
    assert.deepEqual(
      Object.fromEntries(
        Object.entries(statuses).map(([name, response]) => [name, response.status]),
      ),
      { "": Status.NOT_SERVING, "order.v1.OrderService": Status.NOT_SERVING },
    );
  });

  it("keeps every service NOT_SERVING after shutdown, ignoring later changes", async () => {
    const { health, client } = inMemory({ services: ["user.v1.UserService"] });
    health.shutdown();
    health.setStatus("", Status.SERVING);
    health.setStatus("order.v1.OrderService", Status.SERVING);
    health.setAll(Status.SERVING);
    assert.equal(await statusOf(client, ""), Status.NOT_SERVING);
    assert.equal(await statusOf(client, "user.v1.UserService"), Status.NOT_SERVING);
    assert.equal((await checkError(client, "order.v1.OrderService")).code, Code.NotFound);
  });

  it("fails List with RESOURCE_EXHAUSTED beyond 100 services, as grpc-go does", async () => {
    const { health, client } = inMemory();
    for (let i = 1; i < 100; i++) health.setStatus(`s${i}`, Status.SERVING);
    assert.equal(Object.keys((await client.list({})).statuses).length, 100);
    health.setStatus("s100", Status.SERVING);
    await assert.rejects(
      client.list({}),
      (error) => error instanceof ConnectError && error.code === Code.ResourceExhausted,
    );
  });
});

/** Reads a stream one message at a time and can tell that nothing arrives for a while. */
function reader<T>(stream: AsyncIterable<T>) {
  const iterator = stream[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<T>> | undefined;
  return {
    async next(): Promise<T> {
      const result = await (pending ?? iterator.next());
      pending = undefined;
      assert.equal(result.done, false, "the stream ended");
      return result.value;
    },
    /** Whether no message (and no end) arrives within `ms`. */
    async quietFor(ms: number): Promise<boolean> {
      pending ??= iterator.next();
      return Promise.race([pending.then(() => false), sleep(ms).then(() => true)]);
    },
    /** How the stream ends: "done", or the code of its error. */
    async end(): Promise<"done" | Code> {
      try {
        const result = await (pending ?? iterator.next());
        assert.equal(result.done, true, "the stream sent another message");
        return "done";
      } catch (error) {
        return ConnectError.from(error).code;
      }
    },
  };
}

/** Waits until `health` has `count` open Watch streams; the server sees a cancel shortly after. */
async function watchersToBe(health: HealthStatus, count: number) {
  for (let i = 0; i < 200 && health.watchers !== count; i++) await sleep(5);
  assert.equal(health.watchers, count);
}

/** A real HTTP/2 server on a free port serving `health`. */
async function startServer(health: HealthStatus) {
  const server = http2.createServer(
    connectNodeAdapter({ routes: (router) => router.service(Health, health.service) }),
  );
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    transports: {
      grpc: () => createGrpcTransport({ baseUrl }),
      "grpc-web": () => createGrpcWebTransport({ baseUrl, httpVersion: "2" }),
      connect: () => createConnectTransport({ baseUrl, httpVersion: "2" }),
    } satisfies Record<string, () => Transport>,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) session.destroy();
      }),
  };
}

for (const protocol of ["grpc", "grpc-web", "connect"] as const) {
  describe(`health on a real server over ${protocol}`, () => {
    let health: HealthStatus;
    let server: Awaited<ReturnType<typeof startServer>>;
    let client: HealthClient;
    before(async () => {
      health = createHealthService({ services: ["user.v1.UserService"] });
      server = await startServer(health);
      client = createClient(Health, server.transports[protocol]());
    });
    after(() => server.close());

    it("answers Check, with NOT_FOUND for an unknown service", async () => {
      assert.deepEqual(await statusOf(client, ""), Status.SERVING);
      assert.deepEqual(await statusOf(client, "user.v1.UserService"), Status.SERVING);
      const error = await checkError(client, "nope.v1.Nope");
      assert.equal(error.code, Code.NotFound);
      assert.equal(error.rawMessage, 'unknown service "nope.v1.Nope"');
    });

    it("watches an unknown service: SERVICE_UNKNOWN, open until it is registered", async () => {
      const abort = new AbortController();
      const watch = reader(
        client.watch({ service: "order.v1.OrderService" }, { signal: abort.signal }),
      );
      assert.equal((await watch.next()).status, Status.SERVICE_UNKNOWN);
      assert.equal(await watch.quietFor(100), true);
      health.setStatus("order.v1.OrderService", Status.SERVING);
      assert.equal((await watch.next()).status, Status.SERVING);
      abort.abort();
      await watchersToBe(health, 0);
    });

    it("sends the current status at once, then only changes", async () => {
      const abort = new AbortController();
      const watch = reader(
        client.watch({ service: "user.v1.UserService" }, { signal: abort.signal }),
      );
      assert.equal((await watch.next()).status, Status.SERVING);
      health.setStatus("user.v1.UserService", Status.SERVING);
      health.setStatus("", Status.NOT_SERVING);
      assert.equal(await watch.quietFor(50), true);
      health.setStatus("user.v1.UserService", Status.NOT_SERVING);
      assert.equal((await watch.next()).status, Status.NOT_SERVING);
      // Changes faster than the stream is read collapse into the newest status...
      for (let i = 0; i < 1001; i++) {
        health.setStatus("user.v1.UserService", i % 2 === 0 ? Status.SERVING : Status.NOT_SERVING);
      }
      assert.equal((await watch.next()).status, Status.SERVING);
      assert.equal(await watch.quietFor(50), true);
      // ...and a flip and a flip back before the reader catches up are no change at all.
      health.setStatus("user.v1.UserService", Status.NOT_SERVING);
      health.setStatus("user.v1.UserService", Status.SERVING);
      assert.equal(await watch.quietFor(50), true);
      health.setStatus("", Status.SERVING);
      abort.abort();
      await watchersToBe(health, 0);
    });

    it("ends the Watch stream and forgets the watcher when the client cancels", async () => {
      const abort = new AbortController();
      const watches = ["", "", "user.v1.UserService"].map((service) =>
        reader(client.watch({ service }, { signal: abort.signal })),
      );
      for (const watch of watches) await watch.next();
      assert.equal(health.watchers, 3);
      abort.abort();
      for (const watch of watches) assert.equal(await watch.end(), Code.Canceled);
      await watchersToBe(health, 0);
    });

    it("flips every watcher to NOT_SERVING on shutdown, for good", async () => {
      const abort = new AbortController();
      const whole = reader(client.watch({ service: "" }, { signal: abort.signal }));
      const user = reader(
        client.watch({ service: "user.v1.UserService" }, { signal: abort.signal }),
      );
      assert.equal((await whole.next()).status, Status.SERVING);
      assert.equal((await user.next()).status, Status.SERVING);
      health.shutdown();
      assert.equal((await whole.next()).status, Status.NOT_SERVING);
      assert.equal((await user.next()).status, Status.NOT_SERVING);
      health.setAll(Status.SERVING);
      health.setStatus("", Status.SERVING);
      assert.equal(await whole.quietFor(50), true);
      assert.equal(await statusOf(client, ""), Status.NOT_SERVING);
      abort.abort();
      await watchersToBe(health, 0);
    });
  });
}

// The server's side of a slow reader, the same whatever the protocol: shown over gRPC.
describe("health on a real server, watched by a slow reader", () => {
  let health: HealthStatus;
  let server: Awaited<ReturnType<typeof startServer>>;
  let client: HealthClient;
  before(async () => {
    health = createHealthService({ services: ["user.v1.UserService"] });
    server = await startServer(health);
    client = createClient(Health, server.transports.grpc());
  });
  after(() => server.close());

  it("holds back changes from a reader that stops reading, keeping only the newest", async () => {
    const abort = new AbortController();
    const watch = reader(
      client.watch({ service: "user.v1.UserService" }, { signal: abort.signal }),
    );
    assert.equal((await watch.next()).status, Status.SERVING);
    // Each change gets its own turn of the event loop, so the server sends every one it can
    // until HTTP/2 flow control stops it (after some 200 KiB); from then on it keeps only the
    // newest, and the reader gets the last change (UNKNOWN) right after what was in flight.
    const changes = 100_000;
    for (let i = 1; i < changes; i++) {
      health.setStatus("user.v1.UserService", i % 2 === 0 ? Status.SERVING : Status.NOT_SERVING);
      await setImmediate();
    }
    health.setStatus("user.v1.UserService", Status.UNKNOWN);
    let received = 1;
    while ((await watch.next()).status !== Status.UNKNOWN) received++;
    assert.equal(await watch.quietFor(50), true);
    assert.ok(received < changes / 2, `received ${received} of ${changes} changes`);
    health.setStatus("user.v1.UserService", Status.SERVING);
    assert.equal((await watch.next()).status, Status.SERVING);
    abort.abort();
    await watchersToBe(health, 0);
  });
});
