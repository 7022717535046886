import type { Store } from "@keel/store";
import { rethrowAsConnect } from "./errors.ts";

/**
 * Who owns an order, for the authorization of order methods. An order's owner never changes, so
 * answers are kept (at most `max`, the oldest forgotten first) and most checks cost no query.
 */
export function createOrderOwners(
  store: Store,
  max = 100_000,
): (orderId: bigint) => Promise<bigint | undefined> {
  const owners = new Map<bigint, bigint>();
  return async (orderId) => {
    const known = owners.get(orderId);
    if (known !== undefined) return known;
    // Asked by the authorization interceptor, outside any service: a store failure leaves here
    // with its code, for metrics and logs to record it as the client gets it.
    const order = await store.orders.get(orderId).catch(rethrowAsConnect);
    if (order === undefined) return undefined;
    if (owners.size >= max) {
      const oldest = owners.keys().next().value;
      if (oldest !== undefined) owners.delete(oldest);
    }
    owners.set(orderId, order.userId);
    return order.userId;
  };
}
