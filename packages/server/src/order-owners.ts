import type { Store } from "@keel/store";

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
    const order = await store.orders.get(orderId);
    if (order === undefined) return undefined;
    if (owners.size >= max) {
      const oldest = owners.keys().next().value;
      if (oldest !== undefined) owners.delete(oldest);
    }
    owners.set(orderId, order.userId);
    return order.userId;
  };
}
