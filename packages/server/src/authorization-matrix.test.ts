import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  createOrderClient,
  createUserClient,
  type OrderClient,
  type Protocol,
  type UserClient,
} from "@keel/clients";
import { CheckpointStatus, type Order, OrderService } from "@keel/gen/order/v1/order_pb";
import { UserService, UserStatus } from "@keel/gen/user/v1/user_pb";
import { iterate } from "./testing/rpc.ts";
import { mintToken, startTestServer, type TestServer } from "./testing/test-server.ts";

type Who = "anonymous" | "owner" | "other" | "admin" | "fulfillment";
const everyone: Who[] = ["anonymous", "owner", "other", "admin", "fulfillment"];
/** Allowed: the call got past authentication and authorization (whatever the handler said). */
const ok = "allowed";
type Outcome = typeof ok | "Unauthenticated" | "PermissionDenied" | "NotFound";
const protocols: Protocol[] = ["grpc", "grpc-web", "connect"];

const password = "correct horse battery";
let server: TestServer;
let owner: bigint;
let other: bigint;
let users: Record<Who, UserClient>;
let ordersOver: Record<Protocol, Record<Who, OrderClient>>;
let orders: Record<Who, OrderClient>;
let adminOrders: OrderClient;

/** A fresh order of the owner's, paid and shipped as a test needs it. */
async function ownersOrder(state: "pending" | "shipped" = "pending"): Promise<Order> {
  const { order } = await adminOrders.createOrder({
    userId: owner,
    items: [
      {
        sku: "S",
        name: "Sock",
        quantity: 1,
        unitPrice: { currencyCode: "EUR", amountMinor: 100n },
      },
    ],
  });
  assert.ok(order);
  if (state === "shipped") {
    await adminOrders.payOrder({
      orderId: order.orderId,
      amount: order.total,
      idempotencyKey: `k${order.orderId}`,
    });
    await adminOrders.shipOrder({ orderId: order.orderId, carrier: "DHL", trackingNumber: "T1" });
  }
  return order;
}

async function first<T>(stream: AsyncIterable<T>): Promise<void> {
  for await (const _ of stream) return;
}

/** Each method's call as `who`, acting on the owner's user and orders. */
const calls: Record<string, (who: Who) => Promise<unknown>> = {
  "UserService/GetUser": (who) => users[who].getUser({ userId: owner }),
  "UserService/CreateUser": (who) =>
    users[who].createUser({
      username: `new_${who}_${Date.now()}`,
      email: `${who}${Date.now()}@example.com`,
      password,
    }),
  "UserService/ListUsers": (who) => users[who].listUsers({}),
  "UserService/StreamUserActivities": (who) =>
    first(users[who].streamUserActivities({ userId: owner })),
  "UserService/BatchUpdateUsers": (who) =>
    users[who].batchUpdateUsers(iterate([{ userId: owner, user: { tags: [who] } }])),
  "UserService/SyncUserStatus": (who) =>
    first(
      users[who].syncUserStatus(
        iterate([{ userId: owner, status: UserStatus.ACTIVE }, { userId: owner }]),
      ),
    ),
  "UserService/Login": (who) => users[who].login({ username: "owner", password }),
  "UserService/RefreshToken": async (who) => {
    const { refreshToken } = await users[who].login({ username: "owner", password });
    return users[who].refreshToken({ refreshToken });
  },
  "UserService/CreateApiKey": (who) => users[who].createApiKey({ name: `by ${who}` }),
  "UserService/ListApiKeys": (who) => users[who].listApiKeys({}),
  "UserService/RevokeApiKey": async (who) => {
    const { apiKey } = await users.admin.createApiKey({ name: "to revoke" });
    return users[who].revokeApiKey({ keyId: apiKey?.keyId ?? "" });
  },
  "OrderService/CreateOrder": (who) =>
    orders[who].createOrder({
      userId: owner,
      items: [
        {
          sku: "S",
          name: "Sock",
          quantity: 1,
          unitPrice: { currencyCode: "EUR", amountMinor: 100n },
        },
      ],
    }),
  "OrderService/GetOrder": async (who) =>
    orders[who].getOrder({ orderId: (await ownersOrder()).orderId }),
  "OrderService/ListOrders": (who) => orders[who].listOrders({ userId: owner }),
  "OrderService/CancelOrder": async (who) =>
    orders[who].cancelOrder({ orderId: (await ownersOrder()).orderId }),
  "OrderService/PayOrder": async (who) => {
    const order = await ownersOrder();
    return orders[who].payOrder({
      orderId: order.orderId,
      amount: order.total,
      idempotencyKey: "pay",
    });
  },
  "OrderService/ShipOrder": async (who) =>
    orders[who].shipOrder({
      orderId: (await ownersOrder()).orderId,
      carrier: "DHL",
      trackingNumber: "T",
    }),
  "OrderService/UpdateShipment": async (who) => {
    const { orderId } = await ownersOrder("shipped");
    return orders[who].updateShipment(
      iterate([{ orderId, checkpoint: { location: "Hub", status: CheckpointStatus.IN_TRANSIT } }]),
    );
  },
  "OrderService/TrackOrder": async (who) =>
    first(orders[who].trackOrder({ orderId: (await ownersOrder()).orderId })),
};

const U: Outcome = "Unauthenticated";
const D: Outcome = "PermissionDenied";
// Another user's existing order answers as a missing one would, to those who may not see it.
const N: Outcome = "NotFound";
// anonymous, owner, another user, admin, fulfillment
const expected: Record<string, Outcome[]> = {
  "UserService/GetUser": [U, ok, D, ok, D],
  "UserService/CreateUser": [ok, ok, ok, ok, ok],
  "UserService/ListUsers": [U, D, D, ok, D],
  "UserService/StreamUserActivities": [U, ok, D, ok, D],
  "UserService/BatchUpdateUsers": [U, ok, D, ok, D],
  // Setting a status is an administrator's, even one's own: a suspended user must not undo it.
  "UserService/SyncUserStatus": [U, D, D, ok, D],
  "UserService/Login": [ok, ok, ok, ok, ok],
  "UserService/RefreshToken": [ok, ok, ok, ok, ok],
  "UserService/CreateApiKey": [U, D, D, ok, D],
  "UserService/ListApiKeys": [U, D, D, ok, D],
  "UserService/RevokeApiKey": [U, D, D, ok, D],
  "OrderService/CreateOrder": [U, ok, D, ok, D],
  "OrderService/GetOrder": [U, ok, N, ok, ok],
  "OrderService/ListOrders": [U, ok, D, ok, D],
  "OrderService/CancelOrder": [U, ok, N, ok, D],
  "OrderService/PayOrder": [U, ok, N, ok, D],
  "OrderService/ShipOrder": [U, D, D, ok, ok],
  "OrderService/UpdateShipment": [U, D, D, ok, ok],
  "OrderService/TrackOrder": [U, ok, N, ok, ok],
};

async function outcome(call: Promise<unknown>): Promise<Outcome> {
  try {
    await call;
    return ok;
  } catch (err) {
    const code = ConnectError.from(err).code;
    if (code === Code.Unauthenticated || code === Code.PermissionDenied || code === Code.NotFound)
      return Code[code] as Outcome;
    return ok;
  }
}

before(async () => {
  server = await startTestServer();
  const anonymous = createUserClient({ baseUrl: server.url });
  const make = async (username: string) => {
    await anonymous.createUser({ username, email: `${username}@example.com`, password });
    return anonymous.login({ username, password });
  };
  const ownerLogin = await make("owner");
  const otherLogin = await make("other");
  owner = ownerLogin.userId;
  other = otherLogin.userId;
  const tokens: Record<Who, string | undefined> = {
    anonymous: undefined,
    owner: ownerLogin.accessToken,
    other: otherLogin.accessToken,
    admin: await mintToken("9001", ["admin"]),
    fulfillment: await mintToken("9002", ["fulfillment"]),
  };
  const clients = <T>(make: (token: string | undefined) => T) =>
    Object.fromEntries(everyone.map((who) => [who, make(tokens[who])])) as Record<Who, T>;
  const options = (token: string | undefined) => ({
    baseUrl: server.url,
    ...(token ? { token } : {}),
  });
  users = clients((token) => createUserClient(options(token)));
  ordersOver = Object.fromEntries(
    protocols.map((protocol) => [
      protocol,
      clients((token) => createOrderClient({ ...options(token), protocol })),
    ]),
  ) as Record<Protocol, Record<Who, OrderClient>>;
  orders = ordersOver.grpc;
  adminOrders = orders.admin;
});
after(() => server.stop());

describe("authorization matrix", () => {
  it("covers every method of both services, so none is reachable by accident", () => {
    const all = [UserService, OrderService].flatMap((s) =>
      s.methods.map((m) => `${s.name}/${m.name}`),
    );
    assert.deepEqual(Object.keys(expected).sort(), all.sort());
    assert.deepEqual(Object.keys(calls).sort(), all.sort());
  });

  for (const [method, row] of Object.entries(expected)) {
    // Order methods over every protocol; user methods over gRPC.
    for (const protocol of method.startsWith("OrderService/") ? protocols : ["grpc" as const]) {
      it(`${method} over ${protocol}: ${everyone.map((who, i) => `${who} ${row[i]}`).join(", ")}`, async () => {
        orders = ordersOver[protocol];
        const got: Outcome[] = [];
        for (const who of everyone)
          got.push(await outcome((calls[method] as (who: Who) => Promise<unknown>)(who)));
        assert.deepEqual(got, row);
      });
    }
  }

  // What `other` is told about the owner's order and about an order that does not exist.
  const probes: Record<string, (client: OrderClient, orderId: bigint) => Promise<unknown>> = {
    GetOrder: (client, orderId) => client.getOrder({ orderId }),
    CancelOrder: (client, orderId) => client.cancelOrder({ orderId }),
    PayOrder: (client, orderId) =>
      client.payOrder({
        orderId,
        amount: { currencyCode: "EUR", amountMinor: 100n },
        idempotencyKey: "probe",
      }),
    TrackOrder: (client, orderId) => first(client.trackOrder({ orderId })),
    // Validation comes after authorization: a bad request must not tell the two apart either.
    "PayOrder without an amount": (client, orderId) =>
      client.payOrder({ orderId, idempotencyKey: "probe" }),
  };
  for (const protocol of protocols) {
    for (const [method, probe] of Object.entries(probes)) {
      it(`${method} over ${protocol}: another user's order and a missing one answer alike`, async () => {
        const mine = (await ownersOrder()).orderId;
        const missing = mine + 1_000_000n;
        const told = async (orderId: bigint) => {
          const err = await probe(ordersOver[protocol].other, orderId).then(
            () => undefined,
            (e: unknown) => ConnectError.from(e),
          );
          return { code: err === undefined ? "OK" : Code[err.code], message: err?.rawMessage };
        };
        assert.deepEqual(await told(mine), {
          code: "NotFound",
          message: `order ${mine} not found`,
        });
        assert.deepEqual(await told(missing), {
          code: "NotFound",
          message: `order ${missing} not found`,
        });
      });
    }
  }

  it("answers another user's order and a missing one alike over REST", async () => {
    const mine = (await ownersOrder()).orderId;
    const missing = mine + 1_000_000n;
    const token = await mintToken(other, []);
    const rest = async (method: string, path: string) => {
      const res = await fetch(`${server.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        ...(method === "POST" ? { body: "{}" } : {}),
      });
      return { status: res.status, body: await res.text() };
    };
    for (const [method, path] of [
      ["GET", "/api/v1/orders/ID"],
      ["POST", "/api/v1/orders/ID:cancel"],
      ["POST", "/api/v1/orders/ID:pay"],
      ["GET", "/api/v1/orders/ID/events"],
    ] as const) {
      const forMine = await rest(method, path.replace("ID", String(mine)));
      const forMissing = await rest(method, path.replace("ID", String(missing)));
      assert.equal(forMine.status, forMissing.status, `${method} ${path}`);
      assert.equal(
        forMine.body.replaceAll(String(mine), "ID"),
        forMissing.body.replaceAll(String(missing), "ID"),
      );
      assert.match(forMine.body, /not found/);
    }
  });

  it("lets anyone signed in follow a user's status, without changing it", async () => {
    for (const who of ["other", "fulfillment"] as const) {
      assert.equal(
        await outcome(first(users[who].syncUserStatus(iterate([{ userId: owner }])))),
        ok,
      );
    }
    assert.equal(
      await outcome(first(users.anonymous.syncUserStatus(iterate([{ userId: owner }])))),
      U,
    );
  });

  it("stops a suspended user's tokens at once, lets nobody but an admin undo it, and resumes them after", async () => {
    const suspend = (status: UserStatus) =>
      users.admin.batchUpdateUsers(iterate([{ userId: owner, user: { status } }]));
    assert.equal((await suspend(UserStatus.SUSPENDED)).updatedCount, 1);
    try {
      const suspended = (err: unknown) =>
        ConnectError.from(err).code === Code.PermissionDenied &&
        /this account is suspended/.test(ConnectError.from(err).rawMessage);
      // The token issued before the suspension: refused for every kind of call.
      await assert.rejects(users.owner.getUser({ userId: owner }), suspended);
      await assert.rejects(
        calls["OrderService/CreateOrder"]?.("owner") as Promise<unknown>,
        suspended,
      );
      await assert.rejects(first(users.owner.streamUserActivities({ userId: owner })), suspended);
      for (const [how, attempt] of [
        [
          "BatchUpdateUsers",
          () =>
            users.owner.batchUpdateUsers(
              iterate([{ userId: owner, user: { status: UserStatus.ACTIVE } }]),
            ),
        ],
        [
          "SyncUserStatus",
          () =>
            first(
              users.owner.syncUserStatus(iterate([{ userId: owner, status: UserStatus.ACTIVE }])),
            ),
        ],
        ["Login", () => users.anonymous.login({ username: "owner", password })],
      ] as const) {
        await assert.rejects(attempt(), suspended, how);
      }
      assert.equal(
        (await users.admin.getUser({ userId: owner })).user?.status,
        UserStatus.SUSPENDED,
      );
    } finally {
      assert.equal((await suspend(UserStatus.ACTIVE)).updatedCount, 1);
    }
    assert.equal((await users.owner.getUser({ userId: owner })).user?.userId, owner);
  });
});
