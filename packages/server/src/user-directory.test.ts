import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createOrderClient } from "@keel/clients";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { rejectsWith } from "./testing/rpc.ts";
import { mintToken, startTestServer } from "./testing/test-server.ts";

// A stand-in UserService that records what OrderService sends it and answers per user id.
const seen: { authorization: string | null; timeoutMs: number | undefined }[] = [];
let fake: http2.Http2Server;
let server: Awaited<ReturnType<typeof startTestServer>>;

before(async () => {
  fake = http2.createServer(
    connectNodeAdapter({
      routes: (router) =>
        router.service(UserService, {
          async getUser(req, ctx) {
            seen.push({
              authorization: ctx.requestHeader.get("authorization"),
              timeoutMs: ctx.timeoutMs(),
            });
            if (req.userId === 2n) throw new ConnectError("user 2 not found", Code.NotFound);
            if (req.userId === 3n) throw new ConnectError("overloaded", Code.Unavailable);
            if (req.userId === 5n) {
              throw new ConnectError("rate limit of GetUser reached", Code.ResourceExhausted);
            }
            if (req.userId === 4n)
              await sleep(2000, undefined, { signal: ctx.signal }).catch(() => {});
            return { user: { userId: req.userId } };
          },
        }),
    }),
  );
  await new Promise<void>((resolve) => fake.listen(0, "127.0.0.1", resolve));
  server = await startTestServer({
    userServiceUrl: `http://127.0.0.1:${(fake.address() as AddressInfo).port}`,
  });
});
after(async () => {
  await server.stop();
  await new Promise<void>((resolve) => fake.close(() => resolve()));
});

const items = [
  { sku: "S", name: "Sock", quantity: 1, unitPrice: { currencyCode: "EUR", amountMinor: 100n } },
];

describe("OrderService asking UserService", () => {
  it("passes on the caller's credentials and its remaining deadline", async () => {
    const token = await mintToken(1n);
    const orders = createOrderClient({ baseUrl: server.url, token, timeoutMs: 5000 });
    const { order } = await orders.createOrder({ userId: 1n, items });
    assert.equal(order?.userId, 1n);
    const call = seen.at(-1);
    assert.equal(call?.authorization, `Bearer ${token}`);
    assert.ok(
      call?.timeoutMs !== undefined && call.timeoutMs > 0 && call.timeoutMs <= 5000,
      `${call?.timeoutMs}`,
    );
  });

  it("maps the answers: unknown user, unavailable, rate limited, deadline exceeded", async () => {
    const orders = createOrderClient({ baseUrl: server.url, token: server.adminToken });
    await rejectsWith(
      orders.createOrder({ userId: 2n, items }),
      Code.FailedPrecondition,
      /user 2 does not exist/,
    );
    await rejectsWith(
      orders.createOrder({ userId: 3n, items }),
      Code.Unavailable,
      /cannot reach UserService to check the user; retry later/,
    );
    // The caller's own rate limit on the check: the caller is told to slow down, not that
    // UserService is down.
    await rejectsWith(
      orders.createOrder({ userId: 5n, items }),
      Code.ResourceExhausted,
      /rate limit of GetUser reached/,
    );
    const started = Date.now();
    await rejectsWith(
      orders.createOrder({ userId: 4n, items }, { timeoutMs: 300 }),
      Code.DeadlineExceeded,
    );
    assert.ok(Date.now() - started < 1900, "the deadline cut the call short");
  });
});
