import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Code, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { OrderService } from "@keel/gen/order/v1/order_pb";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { writeDevCerts } from "./dev-certs.ts";
import { rejectsWith } from "./testing/rpc.ts";
import { startTestServer, type TestServer } from "./testing/test-server.ts";

// OrderService checks the user through UserService in the same process: through the engine's
// in-process transport and the full server chain, never a socket, so TLS and mTLS cannot stand
// in its way.
const dir = mkdtempSync(join(tmpdir(), "keel-in-process-"));
const pem = (name: string) => readFileSync(join(dir, name));
let server: TestServer;
before(async () => {
  await writeDevCerts({ dir });
  server = await startTestServer({
    tls: { cert: pem("server.pem"), key: pem("server-key.pem"), clientCa: pem("ca.pem") },
  });
});
after(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

const items = [
  { sku: "S", name: "Sock", quantity: 1, unitPrice: { currencyCode: "EUR", amountMinor: 100n } },
];
const bearer =
  (token: string): Interceptor =>
  (next) =>
  (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
const transport = (token?: string) =>
  createGrpcTransport({
    baseUrl: server.url,
    nodeOptions: { ca: pem("ca.pem"), cert: pem("client.pem"), key: pem("client-key.pem") },
    interceptors: token === undefined ? [] : [bearer(token)],
  });

/** grpc_server_handled_total of GetUser, by code. */
async function getUserHandled(): Promise<Record<string, number>> {
  const metric = await server.metricsRegistry.getSingleMetric("grpc_server_handled_total")?.get();
  const out: Record<string, number> = {};
  for (const v of metric?.values ?? []) {
    if (v.labels.grpc_method === "GetUser") out[String(v.labels.grpc_code)] = v.value;
  }
  return out;
}

describe("OrderService checking users in process, under mutual TLS", () => {
  it("creates an order: the check runs through the server's chain, with the caller's token", async () => {
    const users = createClient(UserService, transport());
    const password = "correct horse battery";
    const { user } = await users.createUser({
      username: "tls-buyer",
      email: "tls@example.com",
      password,
    });
    const { accessToken } = await users.login({ username: "tls-buyer", password });
    const before = (await getUserHandled()).OK ?? 0;
    const orders = createClient(OrderService, transport(accessToken));
    const { order } = await orders.createOrder({ userId: user?.userId ?? 0n, items });
    assert.equal(order?.userId, user?.userId);
    // The check was a GetUser call like any other: counted by the server's metrics.
    assert.equal((await getUserHandled()).OK ?? 0, before + 1);
    // A user that does not exist: the check answers NOT_FOUND, the order FAILED_PRECONDITION.
    const admin = createClient(OrderService, transport(server.adminToken));
    await rejectsWith(
      admin.createOrder({ userId: 999_999n, items }),
      Code.FailedPrecondition,
      /user 999999 does not exist/,
    );
    assert.equal((await getUserHandled()).NotFound ?? 0, 1);
  });
});
