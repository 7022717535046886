import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { type OrderService, OrderStatus } from "@keel/gen/order/v1/order_pb";
import type { Store } from "@keel/store";
import { money, orderFingerprint, toOrder, toOrderItems } from "./order-mapping.ts";
import { decodePageToken, encodePageToken, resolvePageSize } from "./page-token.ts";
import type { UserDirectory } from "./user-directory.ts";

type Handlers = Pick<
  ServiceImpl<typeof OrderService>,
  "createOrder" | "getOrder" | "listOrders" | "cancelOrder" | "payOrder" | "shipOrder"
>;

/** The unary methods of OrderService. */
export function createOrderHandlers(store: Store, users: UserDirectory): Handlers {
  const mustGet = async (orderId: bigint) => {
    const order = await store.orders.get(orderId);
    if (order === undefined) throw orderNotFound(orderId);
    return order;
  };

  return {
    async createOrder(req, ctx) {
      const { currency, items } = toOrderItems(req.items);
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
      return { order: toOrder(await mustGet(req.orderId)) };
    },

    async listOrders(req) {
      const limit = resolvePageSize(req.pageSize);
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
      return { order: toOrder(await store.orders.cancel(req.orderId, req.reason)) };
    },

    async payOrder(req) {
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
