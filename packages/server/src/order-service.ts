import type { ServiceImpl } from "@connectrpc/connect";
import { OrderService } from "@keel/gen/order/v1/order_pb";
import type { Store } from "@keel/store";
import { mapStoreErrors } from "./map-store-errors.ts";
import { createOrderHandlers } from "./order-handlers.ts";
import { createOrderStreamHandlers } from "./order-streams.ts";
import type { UserDirectory } from "./user-directory.ts";

/** The implementation of order.v1.OrderService; store errors leave it as ConnectErrors. */
export function createOrderService(
  store: Store,
  users: UserDirectory,
): ServiceImpl<typeof OrderService> {
  return mapStoreErrors(OrderService, {
    ...createOrderHandlers(store, users),
    ...createOrderStreamHandlers(store),
  });
}
