import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import {
  createOrderClient,
  createUserClient,
  type OrderClient,
  type Protocol,
  type UserClient,
} from "@keel/clients";
import {
  CheckpointStatus,
  type Order,
  OrderEventType,
  OrderStatus,
  type UpdateShipmentRequestSchema,
} from "@keel/gen/order/v1/order_pb";
import { iterate, rejectsWith, take } from "./testing/rpc.ts";
import { startTestServer } from "./testing/test-server.ts";

const protocols: Protocol[] = ["grpc", "grpc-web", "connect"];
const usd = (amountMinor: bigint) => ({ currencyCode: "USD", amountMinor });
const items = [
  { sku: "APL-1", name: "Apple", quantity: 3, unitPrice: usd(125n) },
  { sku: "BRD-2", name: "Bread", quantity: 1, unitPrice: usd(450n) },
];

let server: Awaited<ReturnType<typeof startTestServer>>;
before(async () => {
  server = await startTestServer();
});
after(() => server.stop());

for (const protocol of protocols) {
  describe(`OrderService over ${protocol}`, () => {
    let orders: OrderClient;
    let users: UserClient;
    let userId: bigint;
    let seq = 0;

    before(async () => {
      orders = createOrderClient({ baseUrl: server.url, protocol, token: server.adminToken });
      users = createUserClient({ baseUrl: server.url, protocol, token: server.adminToken });
      const name = `buyer_${protocol.replace("-", "")}`;
      const { user } = await users.createUser({
        username: name,
        email: `${name}@example.com`,
        password: "correct horse battery",
      });
      userId = user?.userId ?? 0n;
    });

    const create = async (extra: { idempotencyKey?: string } = {}) => {
      const { order } = await orders.createOrder({ userId, items, ...extra });
      assert.ok(order);
      return order;
    };
    const pay = (order: Order) =>
      orders.payOrder({
        orderId: order.orderId,
        amount: order.total,
        idempotencyKey: `pay-${++seq}`,
      });
    const ship = (order: Order) =>
      orders.shipOrder({ orderId: order.orderId, carrier: "DHL", trackingNumber: `T${++seq}` });
    const checkpoint = (order: Order, status: CheckpointStatus, location = "Leipzig") =>
      orders.updateShipment(
        iterate([{ orderId: order.orderId, checkpoint: { location, status } }]),
      );

    it("creates an order with server-computed totals and gets it back", async () => {
      const order = await create();
      assert.equal(order.status, OrderStatus.PENDING_PAYMENT);
      assert.equal(order.userId, userId);
      assert.deepEqual(order.total, { ...order.total, currencyCode: "USD", amountMinor: 825n });
      assert.deepEqual(
        order.items.map((i) => i.lineTotal?.amountMinor),
        [375n, 450n],
      );
      const { order: got } = await orders.getOrder({ orderId: order.orderId });
      assert.deepEqual(got, order);
    });

    it("refuses an order for a user that does not exist, asking UserService", async () => {
      await rejectsWith(
        orders.createOrder({ userId: 999_999n, items }),
        Code.FailedPrecondition,
        /user 999999 does not exist/,
      );
    });

    it("names each invalid field of a bad order", async () => {
      await rejectsWith(
        orders.createOrder({ userId, items: [] }),
        Code.InvalidArgument,
        /items: must have 1 to 100/,
      );
      await rejectsWith(
        orders.createOrder({
          userId: 0n,
          items: [
            { sku: "", name: "X", quantity: 0, unitPrice: usd(1n) },
            {
              sku: "Y",
              name: "Y",
              quantity: 1,
              unitPrice: { currencyCode: "EUR", amountMinor: 1n },
            },
            {
              sku: "Z",
              name: "Z",
              quantity: 1,
              unitPrice: { currencyCode: "usd", amountMinor: -1n },
            },
          ],
        }),
        Code.InvalidArgument,
        new RegExp(
          [
            "user_id: must be a positive user id",
            "items\\[0\\]\\.sku: ",
            "items\\[0\\]\\.quantity: ",
            'items\\[1\\]\\.unit_price\\.currency_code: every item must be in "USD"',
            "items\\[2\\]\\.unit_price\\.amount_minor",
          ]
            .map((fragment) => `(?=.*${fragment})`)
            .join(""),
        ),
      );
      await rejectsWith(orders.getOrder({ orderId: 0n }), Code.InvalidArgument, /order_id/);
      await rejectsWith(
        orders.getOrder({ orderId: 123_456_789n }),
        Code.NotFound,
        /order 123456789 not found/,
      );
    });

    it("makes one order for a retried idempotency key, and refuses the key for another order", async () => {
      const key = `create-${protocol}`;
      const first = await create({ idempotencyKey: key });
      const retry = await create({ idempotencyKey: key });
      assert.equal(retry.orderId, first.orderId);
      assert.deepEqual(retry, first);
      await rejectsWith(
        orders.createOrder({ userId, items: items.slice(0, 1), idempotencyKey: key }),
        Code.AlreadyExists,
        /idempotency_key/,
      );
      const all = await orders.listOrders({ userId, pageSize: 1000 });
      assert.equal(all.orders.filter((o) => o.orderId === first.orderId).length, 1);
    });

    it("pays once per key: a retry returns the same payment, another key is refused", async () => {
      const order = await create();
      await rejectsWith(
        orders.payOrder({ orderId: order.orderId, amount: usd(824n), idempotencyKey: "k" }),
        Code.InvalidArgument,
        /amount: must equal the order total, 825 USD/,
      );
      await rejectsWith(
        orders.payOrder({ orderId: order.orderId, amount: usd(825n), idempotencyKey: "" }),
        Code.InvalidArgument,
        /idempotency_key/,
      );
      const key = `pay-once-${protocol}`;
      const paid = await orders.payOrder({
        orderId: order.orderId,
        amount: usd(825n),
        idempotencyKey: key,
      });
      assert.equal(paid.order?.status, OrderStatus.PAID);
      assert.equal(paid.payment?.amount?.amountMinor, 825n);
      assert.equal(paid.payment?.idempotencyKey, key);
      const retry = await orders.payOrder({
        orderId: order.orderId,
        amount: usd(825n),
        idempotencyKey: key,
      });
      assert.equal(retry.payment?.paymentId, paid.payment?.paymentId);
      await rejectsWith(
        orders.payOrder({ orderId: order.orderId, amount: usd(825n), idempotencyKey: `${key}-2` }),
        Code.FailedPrecondition,
        /is PAID; pay needs PENDING_PAYMENT/,
      );
    });

    it("allows exactly the legal transitions, naming the current status otherwise", async () => {
      const inState = async (state: OrderStatus): Promise<Order> => {
        const order = await create();
        if (state === OrderStatus.CANCELLED) await orders.cancelOrder({ orderId: order.orderId });
        if (state === OrderStatus.PENDING_PAYMENT || state === OrderStatus.CANCELLED) return order;
        await pay(order);
        if (state === OrderStatus.PAID) return order;
        await ship(order);
        if (state === OrderStatus.DELIVERED) await checkpoint(order, CheckpointStatus.DELIVERED);
        return order;
      };
      const actions = {
        pay: async (o: Order) => (await pay(o)).order?.status,
        ship: async (o: Order) => (await ship(o)).order?.status,
        cancel: async (o: Order) =>
          (await orders.cancelOrder({ orderId: o.orderId, reason: "r" })).order?.status,
      };
      const legal: Record<string, OrderStatus | undefined> = {
        [`${OrderStatus.PENDING_PAYMENT}:pay`]: OrderStatus.PAID,
        [`${OrderStatus.PENDING_PAYMENT}:cancel`]: OrderStatus.CANCELLED,
        [`${OrderStatus.PAID}:ship`]: OrderStatus.SHIPPED,
        [`${OrderStatus.PAID}:cancel`]: OrderStatus.CANCELLED,
      };
      const names: Record<number, string> = {
        [OrderStatus.PENDING_PAYMENT]: "PENDING_PAYMENT",
        [OrderStatus.PAID]: "PAID",
        [OrderStatus.SHIPPED]: "SHIPPED",
        [OrderStatus.DELIVERED]: "DELIVERED",
        [OrderStatus.CANCELLED]: "CANCELLED",
      };
      for (const state of Object.keys(names).map(Number) as OrderStatus[]) {
        for (const [action, run] of Object.entries(actions)) {
          const order = await inState(state);
          assert.equal((await orders.getOrder({ orderId: order.orderId })).order?.status, state);
          const expected = legal[`${state}:${action}`];
          if (expected !== undefined) {
            assert.equal(await run(order), expected, `${names[state]} → ${action}`);
          } else {
            await rejectsWith(
              run(order),
              Code.FailedPrecondition,
              new RegExp(`is ${names[state]}; ${action} needs`),
            );
          }
        }
        // A checkpoint is legal only for a SHIPPED order.
        const order = await inState(state);
        const result = await checkpoint(order, CheckpointStatus.IN_TRANSIT);
        if (state === OrderStatus.SHIPPED) assert.equal(result.appliedCount, 1);
        else
          assert.match(
            result.errors[0] ?? "",
            new RegExp(`is ${names[state]}; checkpoint needs SHIPPED`),
          );
      }
    });

    it("applies the valid checkpoints of a carrier's stream and delivers orders", async () => {
      const shipped = await create();
      await pay(shipped);
      await ship(shipped);
      const pending = await create();
      const updates: MessageInitShape<typeof UpdateShipmentRequestSchema>[] = [
        {
          orderId: shipped.orderId,
          checkpoint: { location: "Leipzig", status: CheckpointStatus.IN_TRANSIT },
        },
        {
          orderId: pending.orderId,
          checkpoint: { location: "Leipzig", status: CheckpointStatus.IN_TRANSIT },
        },
        {
          orderId: shipped.orderId,
          checkpoint: { location: "", status: CheckpointStatus.UNSPECIFIED },
        },
        {
          orderId: shipped.orderId,
          checkpoint: { location: "Berlin", status: CheckpointStatus.DELIVERED, note: "door" },
        },
      ];
      const result = await orders.updateShipment(iterate(updates));
      assert.equal(result.appliedCount, 2);
      assert.deepEqual(result.deliveredOrderIds, [shipped.orderId]);
      assert.equal(result.errors.length, 2);
      assert.match(
        result.errors[0] ?? "",
        /^checkpoint #2 \(order_id=\d+\): order \d+ is PENDING_PAYMENT/,
      );
      assert.match(
        result.errors[1] ?? "",
        /^checkpoint #3 .*checkpoint\.location: .*checkpoint\.status/,
      );
      const { order } = await orders.getOrder({ orderId: shipped.orderId });
      assert.equal(order?.status, OrderStatus.DELIVERED);
      assert.deepEqual(
        order?.shipment?.checkpoints.map((c) => c.location),
        ["Leipzig", "Berlin"],
      );
      assert.ok(order?.shipment?.deliveredAt);
    });

    it("tracks an order's events so far, then live ones, and ends when it is delivered", async () => {
      const order = await create();
      await pay(order);
      const stream = orders
        .trackOrder({ orderId: order.orderId }, { timeoutMs: 10_000 })
        [Symbol.asyncIterator]();
      const history = await take(stream, 2);
      assert.deepEqual(
        history.map((r) => r.event?.type),
        [OrderEventType.CREATED, OrderEventType.PAID],
      );
      await ship(order);
      await checkpoint(order, CheckpointStatus.OUT_FOR_DELIVERY, "Berlin");
      await checkpoint(order, CheckpointStatus.DELIVERED, "Berlin");
      const live = await take(stream, 3);
      assert.deepEqual(
        live.map((r) => r.event?.type),
        [OrderEventType.SHIPPED, OrderEventType.CHECKPOINT, OrderEventType.DELIVERED],
      );
      assert.equal(live[1]?.event?.checkpoint?.status, CheckpointStatus.OUT_FOR_DELIVERY);
      assert.equal(live[2]?.event?.status, OrderStatus.DELIVERED);
      assert.deepEqual(await stream.next(), { done: true, value: undefined });
      // Tracking an order that is already final sends its history and ends.
      const cancelled = await create();
      await orders.cancelOrder({ orderId: cancelled.orderId, reason: "too slow" });
      const replay = [];
      for await (const r of orders.trackOrder({ orderId: cancelled.orderId })) replay.push(r.event);
      assert.deepEqual(
        replay.map((e) => e?.type),
        [OrderEventType.CREATED, OrderEventType.CANCELLED],
      );
      assert.equal(replay[1]?.reason, "too slow");
      await rejectsWith(
        take(orders.trackOrder({ orderId: 77_777_777n })[Symbol.asyncIterator](), 1),
        Code.NotFound,
      );
    });

    it("pages through a user's orders by status", async () => {
      const mine = [await create(), await create(), await create()];
      await orders.cancelOrder({ orderId: mine[1]?.orderId ?? 0n });
      const seen: bigint[] = [];
      let pageToken = "";
      do {
        const page = await orders.listOrders({ userId, pageSize: 2, pageToken });
        assert.ok(page.orders.length <= 2);
        seen.push(...page.orders.map((o) => o.orderId));
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      for (const o of mine) assert.ok(seen.includes(o.orderId));
      const cancelled = await orders.listOrders({
        userId,
        status: OrderStatus.CANCELLED,
        pageSize: 1000,
      });
      assert.ok(cancelled.orders.some((o) => o.orderId === mine[1]?.orderId));
      assert.ok(cancelled.orders.every((o) => o.status === OrderStatus.CANCELLED));
      const first = await orders.listOrders({ userId, pageSize: 1 });
      await rejectsWith(
        orders.listOrders({ userId: userId + 1n, pageSize: 1, pageToken: first.nextPageToken }),
        Code.InvalidArgument,
        /page_token/,
      );
    });
  });
}
