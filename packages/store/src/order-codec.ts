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
