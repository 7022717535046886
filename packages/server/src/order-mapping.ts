import { createHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { LineItem } from "@keel/gen/order/v1/order_pb";
import {
  type Checkpoint,
  CheckpointSchema,
  type Money,
  MoneySchema,
  type Order,
  type OrderEvent,
  OrderEventSchema,
  OrderSchema,
} from "@keel/gen/order/v1/order_pb";
import type { CheckpointRecord, OrderEventRecord, OrderItemRecord, OrderRecord } from "@keel/store";

export function money(currencyCode: string, amountMinor: bigint): Money {
  return create(MoneySchema, { currencyCode, amountMinor });
}

export function toCheckpoint(record: CheckpointRecord): Checkpoint {
  return create(CheckpointSchema, {
    location: record.location,
    status: record.status,
    time: timestampFromDate(record.time),
    note: record.note,
  });
}

export function toOrder(record: OrderRecord): Order {
  const { payment, shipment } = record;
  return create(OrderSchema, {
    orderId: record.id,
    userId: record.userId,
    status: record.status,
    items: record.items.map((item) => ({
      sku: item.sku,
      name: item.name,
      quantity: item.quantity,
      unitPrice: money(record.currency, item.unitPriceMinor),
      lineTotal: money(record.currency, BigInt(item.quantity) * item.unitPriceMinor),
    })),
    total: money(record.currency, record.totalMinor),
    createdAt: timestampFromDate(record.createdAt),
    updatedAt: timestampFromDate(record.updatedAt),
    cancelReason: record.cancelReason,
    ...(payment === undefined
      ? {}
      : {
          payment: {
            paymentId: payment.id,
            amount: money(payment.currency, payment.amountMinor),
            idempotencyKey: payment.idempotencyKey,
            paidAt: timestampFromDate(payment.paidAt),
          },
        }),
    ...(shipment === undefined
      ? {}
      : {
          shipment: {
            carrier: shipment.carrier,
            trackingNumber: shipment.trackingNumber,
            shippedAt: timestampFromDate(shipment.shippedAt),
            checkpoints: shipment.checkpoints.map(toCheckpoint),
            ...(shipment.deliveredAt === undefined
              ? {}
              : { deliveredAt: timestampFromDate(shipment.deliveredAt) }),
          },
        }),
  });
}

export function toOrderEvent(record: OrderEventRecord): OrderEvent {
  return create(OrderEventSchema, {
    eventId: record.id,
    orderId: record.orderId,
    type: record.type,
    time: timestampFromDate(record.at),
    status: record.status,
    reason: record.reason,
    ...(record.checkpoint === undefined ? {} : { checkpoint: toCheckpoint(record.checkpoint) }),
  });
}

/** The items of a validated CreateOrder request, with their common currency. */
export function toOrderItems(items: readonly LineItem[]): {
  currency: string;
  items: OrderItemRecord[];
} {
  return {
    currency: items[0]?.unitPrice?.currencyCode ?? "",
    items: items.map((item) => ({
      sku: item.sku,
      name: item.name,
      quantity: item.quantity,
      unitPriceMinor: item.unitPrice?.amountMinor ?? 0n,
    })),
  };
}

/** What a CreateOrder request asks for, so that a reused idempotency key can be recognised. */
export function orderFingerprint(currency: string, items: readonly OrderItemRecord[]): string {
  const canonical = JSON.stringify([
    currency,
    items.map((i) => [i.sku, i.name, i.quantity, i.unitPriceMinor.toString()]),
  ]);
  return createHash("sha256").update(canonical).digest("base64url");
}

/** A validated checkpoint as the store keeps it; an unset time means now. */
export function toCheckpointRecord(checkpoint: Checkpoint): CheckpointRecord {
  return {
    location: checkpoint.location,
    status: checkpoint.status,
    time: checkpoint.time === undefined ? new Date() : timestampDate(checkpoint.time),
    note: checkpoint.note,
  };
}
