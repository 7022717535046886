import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { type OrderService, OrderStatus } from "@keel/gen/order/v1/order_pb";
import type { Store } from "@keel/store";
import { money, toOrder } from "./order-mapping.ts";
import {
  checkIdempotencyKey,
  checkItems,
  checkLength,
  checkMoney,
  checkOrderId,
  orderFingerprint,
} from "./order-rules.ts";
import { decodePageToken, encodePageToken, resolvePageSize } from "./page-token.ts";
import type { UserDirectory } from "./user-directory.ts";
import { checkUserId } from "./user-rules.ts";
import { Violations } from "./violations.ts";

type Handlers = Pick<
  ServiceImpl<typeof OrderService>,
  "createOrder" | "getOrder" | "listOrders" | "cancelOrder" | "payOrder" | "shipOrder"
>;

const knownStatuses = new Set<number>([
  OrderStatus.PENDING_PAYMENT,
  OrderStatus.PAID,
  OrderStatus.SHIPPED,
  OrderStatus.DELIVERED,
  OrderStatus.CANCELLED,
]);

/** The unary methods of OrderService. */
export function createOrderHandlers(store: Store, users: UserDirectory): Handlers {
  const mustGet = async (orderId: bigint) => {
    const order = await store.orders.get(orderId);
    if (order === undefined) throw orderNotFound(orderId);
    return order;
  };

  return {
    async createOrder(req, ctx) {
      const v = new Violations();
      checkUserId(v, "user_id", req.userId);
      const { currency, items } = checkItems(v, req.items);
      checkIdempotencyKey(v, "idempotency_key", req.idempotencyKey, false);
      v.throwIfAny();
      await users.requireUser(req.userId, ctx);
      const { order } = await store.orders.create({
        userId: req.userId,
        currency,
        items,
        ...(req.idempotencyKey === ""
          ? {}
          : { idempotencyKey: req.idempotencyKey, fingerprint: orderFingerprint(currency, items) }),
      });
      return { order: toOrder(order) };
    },

    async getOrder(req) {
      const v = new Violations();
      checkOrderId(v, "order_id", req.orderId);
      v.throwIfAny();
      return { order: toOrder(await mustGet(req.orderId)) };
    },

    async listOrders(req) {
      const v = new Violations();
      checkUserId(v, "user_id", req.userId);
      const limit = resolvePageSize(v, req.pageSize);
      if (req.status !== OrderStatus.UNSPECIFIED && !knownStatuses.has(req.status)) {
        v.add("status", "unknown status");
      }
      v.throwIfAny();
      const filter = `user=${req.userId};status=${req.status}`;
      const afterId = decodePageToken(req.pageToken, filter);
      const orders = await store.orders.list({
        userId: req.userId,
        limit: limit + 1,
        ...(afterId === undefined ? {} : { afterId }),
        ...(req.status === OrderStatus.UNSPECIFIED ? {} : { status: req.status }),
      });
      const page = orders.slice(0, limit);
      const last = page.at(-1);
      return {
        orders: page.map(toOrder),
        nextPageToken:
          orders.length > limit && last !== undefined ? encodePageToken(last.id, filter) : "",
      };
    },

    async cancelOrder(req) {
      const v = new Violations();
      checkOrderId(v, "order_id", req.orderId);
      checkLength(v, "reason", req.reason, 0, 500);
      v.throwIfAny();
      return { order: toOrder(await store.orders.cancel(req.orderId, req.reason)) };
    },

    async payOrder(req) {
      const v = new Violations();
      checkOrderId(v, "order_id", req.orderId);
      checkMoney(v, "amount", req.amount);
      checkIdempotencyKey(v, "idempotency_key", req.idempotencyKey, true);
      v.throwIfAny();
      const amount = req.amount ?? money("", 0n);
      const current = await mustGet(req.orderId);
      if (amount.currencyCode !== current.currency || amount.amountMinor !== current.totalMinor) {
        throw new ConnectError(
          `invalid request: amount: must equal the order total, ${current.totalMinor} ${current.currency} in minor units`,
          Code.InvalidArgument,
        );
      }
      const paid = await store.orders.pay(req.orderId, {
        amountMinor: amount.amountMinor,
        currency: amount.currencyCode,
        idempotencyKey: req.idempotencyKey,
      });
      // An order has at most one payment: the one this key made now or on an earlier try.
      const order = toOrder(paid.order);
      return { order, payment: order.payment };
    },

    async shipOrder(req) {
      const v = new Violations();
      checkOrderId(v, "order_id", req.orderId);
      checkLength(v, "carrier", req.carrier, 1, 64);
      checkLength(v, "tracking_number", req.trackingNumber, 1, 128);
      v.throwIfAny();
      const order = await store.orders.ship(req.orderId, {
        carrier: req.carrier,
        trackingNumber: req.trackingNumber,
      });
      return { order: toOrder(order) };
    },
  };
}

export function orderNotFound(orderId: bigint): ConnectError {
  return new ConnectError(`order ${orderId} not found`, Code.NotFound);
}
