import type { CheckpointStatus } from "@keel/gen/order/v1/order_pb";
import type { CheckpointRecord, OrderItemRecord } from "./types.ts";

/** The sum of the line totals, in minor units. */
export function orderTotal(items: readonly OrderItemRecord[]): bigint {
  return items.reduce((sum, item) => sum + BigInt(item.quantity) * item.unitPriceMinor, 0n);
}

/** An order event's details as stored: JSON with times in milliseconds. */
export function encodeEventData(data: { checkpoint?: CheckpointRecord; reason?: string }): string {
  const { checkpoint, reason } = data;
  return JSON.stringify({
    ...(checkpoint === undefined
      ? {}
      : { checkpoint: { ...checkpoint, time: checkpoint.time.getTime() } }),
    ...(reason === undefined || reason === "" ? {} : { reason }),
  });
}

export function decodeEventData(json: string): { checkpoint?: CheckpointRecord; reason?: string } {
  const raw = JSON.parse(json) as {
    checkpoint?: { location: string; status: number; time: number; note: string };
    reason?: string;
  };
  return {
    ...(raw.checkpoint === undefined
      ? {}
      : {
          checkpoint: {
            location: raw.checkpoint.location,
            status: raw.checkpoint.status as CheckpointStatus,
            time: new Date(raw.checkpoint.time),
            note: raw.checkpoint.note,
          },
        }),
    ...(raw.reason === undefined ? {} : { reason: raw.reason }),
  };
}

/**
 * Rows of an order's children (items, payments, checkpoints) read for many orders at once, mapped
 * and grouped by their `order_id`, in the order they were read.
 */
export function groupByOrder<Row extends Readonly<Record<string, unknown>>, T>(
  rows: readonly Row[],
  map: (row: Row) => T,
): Map<bigint, T[]> {
  const groups = new Map<bigint, T[]>();
  for (const row of rows) {
    const orderId = BigInt(row.order_id as bigint | number | string);
    const group = groups.get(orderId);
    if (group === undefined) groups.set(orderId, [map(row)]);
    else group.push(map(row));
  }
  return groups;
}
