import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createOrderClient } from "@keel/clients";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { readSettings } from "./config.ts";
import { startTestServer } from "./testing/test-server.ts";

// KEEL_USER_SERVICE_URL as a DNS target: OrderService reaches UserService at every address of the
// name (here `localhost`, from the hosts file), balanced, as it would a headless Kubernetes service.
let calls = 0;
let fake: http2.Http2Server;
let server: Awaited<ReturnType<typeof startTestServer>>;
let target = "";

before(async () => {
  fake = http2.createServer(
    connectNodeAdapter({
      routes: (router) =>
        router.service(UserService, {
          getUser(req) {
            calls++;
            return { user: { userId: req.userId } };
          },
        }),
    }),
  );
  await new Promise<void>((resolve) => fake.listen(0, "127.0.0.1", resolve));
  target = `dns:///localhost:${(fake.address() as AddressInfo).port}`;
  server = await startTestServer({
    userServiceUrl: readSettings({ KEEL_USER_SERVICE_URL: target }).settings.userServiceUrl,
  });
});
after(async () => {
  await server.stop();
  await new Promise<void>((resolve) => fake.close(() => resolve()));
});

describe("OrderService asking a UserService named by DNS", () => {
  it("checks the user at the name's addresses", async () => {
    const orders = createOrderClient({ baseUrl: server.url, token: server.adminToken });
    const items = [
      { sku: "S", name: "Sock", quantity: 1, unitPrice: { currencyCode: "EUR", amountMinor: 1n } },
    ];
    for (let i = 0; i < 3; i++) {
      const { order } = await orders.createOrder({ userId: 7n, items });
      assert.equal(order?.userId, 7n);
    }
    assert.equal(calls, 3, `UserService at ${target} was asked once per order`);
  });
});
