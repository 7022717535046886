import { type Client, createClient } from "@connectrpc/connect";
import { OrderService } from "@keel/gen/order/v1/order_pb";
import { createTransport, type TransportOptions } from "./transport.ts";

/** A typed client of order.v1.OrderService. */
export type OrderClient = Client<typeof OrderService>;

export type OrderClientOptions = TransportOptions;

/**
 * Creates a typed OrderService client. Calls share one HTTP/2 connection per client.
 *
 * ```ts
 * const orders = createOrderClient({ baseUrl: "http://127.0.0.1:9090", token });
 * const { order } = await orders.getOrder({ orderId: 1n });
 * ```
 */
export function createOrderClient(options: OrderClientOptions): OrderClient {
  return createClient(OrderService, createTransport(options));
}
