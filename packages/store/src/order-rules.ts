import { OrderStatus, OrderStatusSchema } from "@keel/gen/order/v1/order_pb";
import { StoreError } from "./store-error.ts";

/**
 * The order state machine, shared by every store: PENDING_PAYMENT → PAID → SHIPPED → DELIVERED,
 * and CANCELLED from PENDING_PAYMENT or PAID.
 */
const allowedFrom: Record<"pay" | "ship" | "checkpoint" | "cancel", readonly OrderStatus[]> = {
  pay: [OrderStatus.PENDING_PAYMENT],
  ship: [OrderStatus.PAID],
  checkpoint: [OrderStatus.SHIPPED],
  cancel: [OrderStatus.PENDING_PAYMENT, OrderStatus.PAID],
};

/** Throws `failed_precondition` naming the current status when `action` is not allowed in it. */
export function checkTransition(
  orderId: bigint,
  current: OrderStatus,
  action: keyof typeof allowedFrom,
): void {
  const allowed = allowedFrom[action];
  if (allowed.includes(current)) return;
  throw new StoreError(
    "failed_precondition",
    `order ${orderId} is ${orderStatusName(current)}; ${action} needs ${allowed.map(orderStatusName).join(" or ")}`,
  );
}

/** The status without its enum prefix, for example `PENDING_PAYMENT`. */
export function orderStatusName(status: OrderStatus): string {
  return (OrderStatusSchema.value[status]?.name ?? String(status)).replace(/^ORDER_STATUS_/, "");
}

export function orderNotFound(id: bigint): StoreError {
  return new StoreError("not_found", `order ${id} not found`);
}

/** An order's idempotency key sent again with another request. */
export function idempotencyKeyReused(): StoreError {
  return new StoreError(
    "already_exists",
    "idempotency_key was already used for a different order; use a new key",
    { field: "idempotency_key" },
  );
}
