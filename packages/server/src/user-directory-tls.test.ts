import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createOrderClient } from "@keel/clients";
import { UserService } from "@keel/gen/user/v1/user_pb";
import pino from "pino";
import { writeDevCerts } from "./dev-certs.ts";
import { rejectsWith } from "./testing/rpc.ts";
import { startTestServer, type TestServer } from "./testing/test-server.ts";

// UserService elsewhere (KEEL_USER_SERVICE_URL), behind mutual TLS: OrderService reaches it with
// the CA, certificate and key it is given, and says in its log why when it cannot.
const dir = mkdtempSync(join(tmpdir(), "keel-user-service-tls-"));
const pem = (name: string) => readFileSync(join(dir, name));
let users: http2.Http2SecureServer;
let withTls: TestServer;
let withoutTls: TestServer;
const logs: { msg?: string; err?: { message?: string }; userService?: string }[] = [];

before(async () => {
  await writeDevCerts({ dir });
  users = http2.createSecureServer(
    {
      cert: pem("server.pem"),
      key: pem("server-key.pem"),
      ca: pem("ca.pem"),
      requestCert: true,
      rejectUnauthorized: true,
    },
    connectNodeAdapter({
      routes: (router) =>
        router.service(UserService, { getUser: (req) => ({ user: { userId: req.userId } }) }),
    }),
  );
  await new Promise<void>((resolve) => users.listen(0, "127.0.0.1", resolve));
  const userServiceUrl = `https://127.0.0.1:${(users.address() as AddressInfo).port}`;
  withTls = await startTestServer({
    userServiceUrl,
    userServiceTls: { ca: pem("ca.pem"), cert: pem("client.pem"), key: pem("client-key.pem") },
  });
  withoutTls = await startTestServer({
    userServiceUrl,
    logger: pino({ level: "warn" }, { write: (line: string) => logs.push(JSON.parse(line)) }),
  });
});
after(async () => {
  await withTls.stop();
  await withoutTls.stop();
  await new Promise<void>((resolve) => users.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

const items = [
  { sku: "S", name: "Sock", quantity: 1, unitPrice: { currencyCode: "EUR", amountMinor: 100n } },
];

describe("OrderService reaching UserService over mutual TLS", () => {
  it("creates an order with the CA, certificate and key it was given", async () => {
    const orders = createOrderClient({ baseUrl: withTls.url, token: withTls.adminToken });
    const { order } = await orders.createOrder({ userId: 5n, items });
    assert.equal(order?.userId, 5n);
  });

  it("without them answers UNAVAILABLE, and the log says why", async () => {
    const orders = createOrderClient({ baseUrl: withoutTls.url, token: withoutTls.adminToken });
    await rejectsWith(
      orders.createOrder({ userId: 5n, items }),
      Code.Unavailable,
      /cannot reach UserService to check the user/,
    );
    const line = logs.find((l) => l.msg === "cannot reach UserService to check a user");
    assert.ok(line, `no such log line in ${JSON.stringify(logs)}`);
    assert.match(line.userService ?? "", /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(line.err?.message ?? "", /certificate/);
  });
});
