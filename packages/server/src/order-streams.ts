import type { ServiceImpl } from "@connectrpc/connect";
import { type OrderService, OrderStatus } from "@keel/gen/order/v1/order_pb";
import type { Store } from "@keel/store";
import { shuttingDown } from "./errors.ts";
import { orderNotFound } from "./order-handlers.ts";
import { toOrderEvent } from "./order-mapping.ts";
import { checkCheckpoint, checkOrderId } from "./order-rules.ts";
import { applyEach } from "./partial-apply.ts";
import { Violations } from "./violations.ts";

type Handlers = Pick<ServiceImpl<typeof OrderService>, "updateShipment" | "trackOrder">;

const historyPageSize = 500;

function isFinal(status: OrderStatus): boolean {
  return status === OrderStatus.DELIVERED || status === OrderStatus.CANCELLED;
}

/** UpdateShipment and TrackOrder. */
export function createOrderStreamHandlers(store: Store): Handlers {
  return {
    async updateShipment(requests) {
      const delivered: bigint[] = [];
      const { applied, errors } = await applyEach(
        requests,
        (req, n) => `checkpoint #${n} (order_id=${req.orderId})`,
        async (req) => {
          const v = new Violations();
          checkOrderId(v, "order_id", req.orderId);
          const checkpoint = checkCheckpoint(v, "checkpoint", req.checkpoint);
          v.throwIfAny();
          const order = await store.orders.addCheckpoint(req.orderId, checkpoint);
          if (order.status === OrderStatus.DELIVERED) delivered.push(order.id);
        },
      );
      return { appliedCount: applied, errors, deliveredOrderIds: delivered };
    },

    async *trackOrder(req, ctx) {
      const v = new Violations();
      checkOrderId(v, "order_id", req.orderId);
      v.throwIfAny();
      if ((await store.orders.get(req.orderId)) === undefined) throw orderNotFound(req.orderId);
      // Subscribe before reading the history so that nothing falls between the two; what comes
      // twice is skipped by id (an order's events are numbered in commit order).
      const live = store.events.orderEvents(req.orderId, { signal: ctx.signal });
      try {
        let lastId = 0n;
        for (;;) {
          const page = await store.orders.events(req.orderId, {
            afterId: lastId,
            limit: historyPageSize,
          });
          for (const event of page) {
            yield { event: toOrderEvent(event) };
            lastId = event.id;
            if (isFinal(event.status)) return;
          }
          if (page.length < historyPageSize) break;
        }
        for await (const event of live) {
          if (event.id <= lastId) continue;
          lastId = event.id;
          yield { event: toOrderEvent(event) };
          if (isFinal(event.status)) return;
        }
        ctx.signal.throwIfAborted();
        throw shuttingDown();
      } finally {
        live.close();
      }
    },
  };
}
