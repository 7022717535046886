import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  CheckpointSchema,
  type OrderService,
  OrderStatus,
  UpdateShipmentRequestSchema,
} from "@keel/gen/order/v1/order_pb";
import { validateMessage } from "@keel/interceptors";
import type { Store } from "@keel/store";
import { shuttingDown } from "./errors.ts";
import { orderNotFound } from "./order-handlers.ts";
import { toCheckpointRecord, toOrderEvent } from "./order-mapping.ts";
import { orderRequestSchemas } from "./order-schemas.ts";
import { applyEach } from "./partial-apply.ts";

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
          // Validated here, checkpoint by checkpoint, so that one bad one does not end the stream.
          validateMessage(
            UpdateShipmentRequestSchema,
            orderRequestSchemas["order.v1.UpdateShipmentRequest"],
            req,
          );
          const order = await store.orders.addCheckpoint(
            req.orderId,
            toCheckpointRecord(req.checkpoint ?? create(CheckpointSchema)),
          );
          if (order.status === OrderStatus.DELIVERED) delivered.push(order.id);
        },
      );
      return { appliedCount: applied, errors, deliveredOrderIds: delivered };
    },

    async *trackOrder(req, ctx) {
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
