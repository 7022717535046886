import { type Client, createClient } from "@connectrpc/connect";
import { OrderService } from "@keel/gen/order/v1/order_pb";
import {
  type ClientOptions,
  createClientTransport,
  withHealthService,
} from "./client-transport.ts";

/** A typed client of order.v1.OrderService. */
export type OrderClient = Client<typeof OrderService>;

/** `ClientOptions`; health checks watch "order.v1.OrderService" unless told otherwise. */
export type OrderClientOptions = ClientOptions;

/**
 * Creates a typed OrderService client over one endpoint (`baseUrl`) or several (`endpoints`),
 * with balancing, retries of idempotent calls (reads, and writes with an `idempotency_key`),
 * circuit breakers and a default deadline; see `ClientOptions`.
 *
 * ```ts
 * const orders = createOrderClient({ endpoints: ["http://keel-0:9090", "http://keel-1:9090"], token });
 * const { order } = await orders.getOrder({ orderId: 1n });
 * ```
 */
export function createOrderClient(options: OrderClientOptions): OrderClient {
  return createClient(
    OrderService,
    createClientTransport(withHealthService(options, OrderService.typeName)),
  );
}
