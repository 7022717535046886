import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createOrderClient, createUserClient } from "@keel/clients";
import {
  Health,
  HealthCheckResponse_ServingStatus as Serving,
} from "@keel/gen/health/v1/health_pb";
import { startTracing } from "@keel/observability";
import { type Store, StoreError } from "@keel/store";
import { SpanKind } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace";
import { writeDevCerts } from "./dev-certs.ts";
import { startTestServer, type TestServer } from "./testing/test-server.ts";

const exporter = new InMemorySpanExporter();
const tracing = startTracing({
  serviceName: "keel-test",
  samplingRatio: 1,
  spanProcessors: [new SimpleSpanProcessor({ exporter })],
});
const run = promisify(execFile);
const root = fileURLToPath(new URL("../../../", import.meta.url));

let server: TestServer;
let databaseDown = false;
before(async () => {
  server = await startTestServer({
    healthCheckIntervalMs: 50,
    // A database outage, simulated: the store stops answering pings while `databaseDown` is set.
    wrapStore: (store: Store) =>
      Object.assign(Object.create(store) as Store, {
        ping: () =>
          databaseDown
            ? Promise.reject(new StoreError("unavailable", "connection refused"))
            : store.ping(),
      }),
  });
});
after(async () => {
  await server.stop();
  await tracing.shutdown();
});

describe("tracing through the server", () => {
  it("makes OrderService's call to UserService a child of the incoming call's span", async () => {
    const users = createUserClient({ baseUrl: server.url, token: server.adminToken });
    const { user } = await users.createUser({
      username: "traced",
      email: "traced@example.com",
      password: "correct horse battery",
    });
    exporter.reset();
    await createOrderClient({ baseUrl: server.url, token: server.adminToken }).createOrder({
      userId: user?.userId ?? 0n,
      items: [
        {
          sku: "S",
          name: "Sock",
          quantity: 1,
          unitPrice: { currencyCode: "EUR", amountMinor: 100n },
        },
      ],
    });
    const spans = exporter.getFinishedSpans();
    const incoming = spans.find(
      (s) => s.name === "order.v1.OrderService/CreateOrder" && s.kind === SpanKind.SERVER,
    );
    assert.ok(incoming);
    const outgoing = spans.find(
      (s) => s.name === "user.v1.UserService/GetUser" && s.kind === SpanKind.CLIENT,
    );
    assert.equal(outgoing?.parentSpanContext?.spanId, incoming.spanContext().spanId);
    const served = spans.find(
      (s) => s.name === "user.v1.UserService/GetUser" && s.kind === SpanKind.SERVER,
    );
    assert.equal(served?.parentSpanContext?.spanId, outgoing?.spanContext().spanId);
    assert.equal(served?.spanContext().traceId, incoming.spanContext().traceId);
    assert.equal(incoming.attributes["rpc.service"], "order.v1.OrderService");
    assert.equal(incoming.attributes["rpc.method"], "CreateOrder");
    assert.equal(incoming.attributes["rpc.grpc.status_code"], 0);
  });
});

describe("health", () => {
  const health = () => createClient(Health, createGrpcTransport({ baseUrl: server.url }));
  const admin = (path: string) => fetch(`http://127.0.0.1:${server.adminPort}${path}`);

  it("answers grpc.health.v1 without a token, for the server and each service", async () => {
    assert.equal((await health().check({ service: "" })).status, Serving.SERVING);
    assert.equal(
      (await health().check({ service: "order.v1.OrderService" })).status,
      Serving.SERVING,
    );
    await assert.rejects(health().check({ service: "nope.v1.Nope" }), (err: unknown) => {
      return err instanceof ConnectError && err.code === Code.NotFound;
    });
    assert.equal((await admin("/healthz")).status, 200);
    assert.equal((await admin("/readyz")).status, 200);
    assert.equal((await admin("/nowhere")).status, 404);
  });

  it("reports NOT_SERVING while the database is unreachable, and SERVING when it is back", async () => {
    const controller = new AbortController();
    const watch = health()
      .watch({ service: "user.v1.UserService" }, { signal: controller.signal })
      [Symbol.asyncIterator]();
    assert.equal((await watch.next()).value?.status, Serving.SERVING);
    databaseDown = true;
    assert.equal((await watch.next()).value?.status, Serving.NOT_SERVING);
    assert.equal((await admin("/readyz")).status, 503);
    assert.equal((await admin("/healthz")).status, 200, "alive all the same");
    databaseDown = false;
    assert.equal((await watch.next()).value?.status, Serving.SERVING);
    assert.equal((await admin("/readyz")).status, 200);
    controller.abort();
  });
});

describe("server reflection with a third-party client (buf curl)", () => {
  const buf = (...args: string[]) =>
    run(process.execPath, [
      join(root, "node_modules/@bufbuild/buf/bin/buf"),
      "curl",
      "--protocol",
      "grpc",
      "--http2-prior-knowledge",
      ...args,
    ]);

  it("lists both services and calls GetUser with JSON, knowing no proto files", async () => {
    const listed = (await buf("--list-services", server.url)).stdout.split("\n");
    for (const name of ["user.v1.UserService", "order.v1.OrderService", "grpc.health.v1.Health"]) {
      assert.ok(listed.includes(name), `${name} in ${listed.join(", ")}`);
    }
    const users = createUserClient({ baseUrl: server.url, token: server.adminToken });
    const { user } = await users.createUser({
      username: "reflected",
      email: "reflected@example.com",
      password: "correct horse battery",
    });
    const { stdout } = await buf(
      "-H",
      `authorization: Bearer ${server.adminToken}`,
      "-d",
      JSON.stringify({ user_id: String(user?.userId) }),
      `${server.url}/user.v1.UserService/GetUser`,
    );
    const got = JSON.parse(stdout) as { user: { username: string; status: string } };
    assert.equal(got.user.username, "reflected");
    assert.equal(got.user.status, "USER_STATUS_ACTIVE");
  });
});

describe("mutual TLS", () => {
  const dir = mkdtempSync(join(tmpdir(), "keel-tls-"));
  let tls: TestServer;
  const pem = (name: string) => readFileSync(join(dir, name));
  before(async () => {
    await writeDevCerts({ dir });
    tls = await startTestServer({
      tls: { cert: pem("server.pem"), key: pem("server-key.pem"), clientCa: pem("ca.pem") },
    });
  });
  after(async () => {
    await tls.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const client = (withCertificate: boolean) =>
    createClient(
      Health,
      createGrpcTransport({
        baseUrl: tls.url,
        nodeOptions: {
          ca: pem("ca.pem"),
          ...(withCertificate ? { cert: pem("client.pem"), key: pem("client-key.pem") } : {}),
        },
      }),
    );

  it("serves a client with a certificate the CA signed, and refuses one without", async () => {
    assert.match(tls.url, /^https:/);
    assert.equal((await client(true).check({ service: "" })).status, Serving.SERVING);
    await assert.rejects(
      client(false).check({ service: "" }, { timeoutMs: 5000 }),
      (err: unknown) => {
        const code = ConnectError.from(err).code;
        return code === Code.Unavailable || code === Code.Internal || code === Code.Unknown;
      },
    );
  });

  it("serves a Connect call over HTTP/1.1 (a client without ALPN), and gRPC over HTTP/2", async () => {
    const body = await new Promise<{ status: number; protocol: string; text: string }>(
      (resolve, reject) => {
        const req = https.request(
          `${tls.url}/${Health.typeName}/Check`,
          {
            method: "POST",
            ca: pem("ca.pem"),
            cert: pem("client.pem"),
            key: pem("client-key.pem"),
            headers: { "content-type": "application/json" },
          },
          (res) => {
            let text = "";
            res.setEncoding("utf8").on("data", (chunk: string) => {
              text += chunk;
            });
            res.on("end", () =>
              resolve({
                status: res.statusCode ?? 0,
                protocol: `HTTP/${res.httpVersion}`,
                text,
              }),
            );
          },
        );
        req.on("error", reject);
        req.end("{}");
      },
    );
    assert.deepEqual(body, { status: 200, protocol: "HTTP/1.1", text: '{"status":"SERVING"}' });
    assert.equal((await client(true).check({ service: "" })).status, Serving.SERVING);
  });
});

// Let the in-memory exporter settle before the process ends.
await sleep(0);
