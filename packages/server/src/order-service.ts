import type { ServiceImpl } from "@connectrpc/connect";
import type { OrderService } from "@keel/gen/order/v1/order_pb";
import type { Store } from "@keel/store";
import { createOrderHandlers } from "./order-handlers.ts";
import { createOrderStreamHandlers } from "./order-streams.ts";
import type { UserDirectory } from "./user-directory.ts";

/** The implementation of order.v1.OrderService. */
export function createOrderService(
  store: Store,
  users: UserDirectory,
): ServiceImpl<typeof OrderService> {
  return { ...createOrderHandlers(store, users), ...createOrderStreamHandlers(store) };
}
