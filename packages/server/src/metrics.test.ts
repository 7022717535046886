import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createOrderClient, createUserClient } from "@keel/clients";
import { iterate } from "./testing/rpc.ts";
import { startTestServer, type TestServer } from "./testing/test-server.ts";

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.stop());

/** The value of one series in a Prometheus text exposition; undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const wanted = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort();
  for (const line of text.split("\n")) {
    const match = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    const have = (match[2] ?? "").split(",").sort();
    if (wanted.every((w) => have.includes(w)) && have.length === wanted.length)
      return Number(match[3]);
  }
  return undefined;
}

const unary = (service: string, method: string) => ({
  grpc_type: "unary",
  grpc_service: service,
  grpc_method: method,
});

describe("metrics on the admin port", () => {
  it("counts calls per method and code, with histograms and the client side", async () => {
    const users = createUserClient({ baseUrl: server.url, token: server.adminToken });
    const { user } = await users.createUser({
      username: "counted",
      email: "counted@example.com",
      password: "correct horse battery",
    });
    const userId = user?.userId ?? 0n;
    for (let i = 0; i < 3; i++) await users.getUser({ userId });
    await assert.rejects(users.getUser({ userId: 99_999n }));
    await assert.rejects(users.getUser({ userId: 0n }));
    await users.batchUpdateUsers(
      iterate([
        { userId, user: { tags: ["a"] } },
        { userId, user: { tags: ["b"] } },
      ]),
    );
    await createOrderClient({ baseUrl: server.url, token: server.adminToken }).createOrder({
      userId,
      items: [
        {
          sku: "S",
          name: "Sock",
          quantity: 1,
          unitPrice: { currencyCode: "EUR", amountMinor: 100n },
        },
      ],
    });

    const res = await fetch(`http://127.0.0.1:${server.adminPort}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const getUser = unary("user.v1.UserService", "GetUser");
    // 3 by the test + 1 by OrderService asking UserService whether the user exists.
    assert.equal(sample(text, "grpc_server_started_total", getUser), 6);
    assert.equal(sample(text, "grpc_server_handled_total", { ...getUser, grpc_code: "OK" }), 4);
    assert.equal(
      sample(text, "grpc_server_handled_total", { ...getUser, grpc_code: "NotFound" }),
      1,
    );
    assert.equal(
      sample(text, "grpc_server_handled_total", { ...getUser, grpc_code: "InvalidArgument" }),
      1,
    );
    assert.equal(
      sample(text, "grpc_server_handled_total", { ...getUser, grpc_code: "Internal" }),
      0,
    );
    assert.equal(sample(text, "grpc_server_handling_seconds_count", getUser), 6);
    assert.equal(
      sample(text, "grpc_server_handling_seconds_bucket", { ...getUser, le: "+Inf" }),
      6,
    );
    const batch = {
      grpc_type: "client_stream",
      grpc_service: "user.v1.UserService",
      grpc_method: "BatchUpdateUsers",
    };
    assert.equal(sample(text, "grpc_server_msg_received_total", batch), 2);
    assert.equal(sample(text, "grpc_server_msg_sent_total", batch), 1);
    assert.equal(sample(text, "grpc_server_handled_total", { ...batch, grpc_code: "OK" }), 1);
    // Pre-initialised at zero: methods nobody called.
    assert.equal(
      sample(text, "grpc_server_started_total", unary("order.v1.OrderService", "PayOrder")),
      0,
    );
    assert.equal(
      sample(text, "grpc_server_handled_total", {
        ...unary("order.v1.OrderService", "PayOrder"),
        grpc_code: "OK",
      }),
      0,
    );
    // The client side: OrderService's one call to UserService.
    assert.equal(sample(text, "grpc_client_started_total", getUser), 1);
    assert.equal(sample(text, "grpc_client_handled_total", { ...getUser, grpc_code: "OK" }), 1);
    assert.equal(sample(text, "grpc_client_handling_seconds_count", getUser), 1);
    assert.equal(sample(text, "grpc_server_requests_in_flight", getUser), 0);
    assert.match(text, /^process_cpu_seconds_total /m);
    assert.match(text, /^nodejs_eventloop_lag_seconds /m);
  });

  it("counts the calls refused before the interceptors apart, by method and code", async () => {
    // A Connect request over the size limit, refused on its content-length, and one whose
    // timeout is no timeout: neither reaches the interceptors, so neither is a handled call.
    const post = (headers: Record<string, string>, body: string) =>
      fetch(`${server.url}/user.v1.UserService/ListUsers`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${server.adminToken}`,
          ...headers,
        },
        body,
      });
    assert.equal((await post({}, `"${"x".repeat(5 * 1024 * 1024)}"`)).status, 429);
    assert.equal((await post({ "connect-timeout-ms": "soon" }, "{}")).status, 400);
    const text = await (await fetch(`http://127.0.0.1:${server.adminPort}/metrics`)).text();
    const listUsers = { grpc_service: "user.v1.UserService", grpc_method: "ListUsers" };
    assert.equal(
      sample(text, "keel_server_refused_total", { ...listUsers, grpc_code: "ResourceExhausted" }),
      1,
    );
    assert.equal(
      sample(text, "keel_server_refused_total", { ...listUsers, grpc_code: "InvalidArgument" }),
      1,
    );
    assert.equal(
      sample(text, "grpc_server_started_total", { ...listUsers, grpc_type: "unary" }) ?? 0,
      0,
    );
  });

  it("speaks OpenMetrics to scrapers that ask for it", async () => {
    const res = await fetch(`http://127.0.0.1:${server.adminPort}/metrics`, {
      headers: { accept: "application/openmetrics-text; version=1.0.0" },
    });
    assert.match(res.headers.get("content-type") ?? "", /^application\/openmetrics-text/);
    const text = await res.text();
    assert.match(text, /# EOF\n$/);
    assert.match(text, /^grpc_server_started_total\{/m);
  });
});
