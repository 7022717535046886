import type { OrderEventType, OrderStatus } from "@keel/gen/order/v1/order_pb";
import type { UserStatus } from "@keel/gen/user/v1/user_pb";
import { decodeEventData, encodeEventData } from "./order-codec.ts";
import type { ActivityRecord, OrderEventRecord, StatusEvent } from "./types.ts";

/** An event as it travels between processes (PostgreSQL NOTIFY payloads). */
export type BusEvent =
  | { kind: "activity"; activity: ActivityRecord }
  | { kind: "status"; status: StatusEvent }
  | { kind: "order"; event: OrderEventRecord };

/** JSON with ids as decimal strings and times as milliseconds. */
export function encodeBusEvent(event: BusEvent): string {
  switch (event.kind) {
    case "activity": {
      const a = event.activity;
      return JSON.stringify({
        k: "a",
        id: a.id.toString(),
        u: a.userId.toString(),
        a: a.action,
        d: a.details,
        t: a.createdAt.getTime(),
      });
    }
    case "status": {
      const s = event.status;
      return JSON.stringify({
        k: "s",
        u: s.userId.toString(),
        s: s.status,
        t: s.at.getTime(),
        o: s.origin,
      });
    }
    case "order": {
      const e = event.event;
      return JSON.stringify({
        k: "o",
        id: e.id.toString(),
        o: e.orderId.toString(),
        y: e.type,
        s: e.status,
        t: e.at.getTime(),
        d: encodeEventData({
          ...(e.checkpoint ? { checkpoint: e.checkpoint } : {}),
          reason: e.reason,
        }),
      });
    }
  }
}

/** The event a payload carries; undefined for a payload this version does not understand. */
export function decodeBusEvent(payload: string): BusEvent | undefined {
  const raw = JSON.parse(payload) as Record<string, unknown>;
  switch (raw.k) {
    case "a":
      return {
        kind: "activity",
        activity: {
          id: BigInt(raw.id as string),
          userId: BigInt(raw.u as string),
          action: raw.a as string,
          details: raw.d as Record<string, string>,
          createdAt: new Date(raw.t as number),
        },
      };
    case "s":
      return {
        kind: "status",
        status: {
          userId: BigInt(raw.u as string),
          status: raw.s as UserStatus,
          at: new Date(raw.t as number),
          origin: raw.o as string | undefined,
        },
      };
    case "o": {
      const data = decodeEventData(raw.d as string);
      return {
        kind: "order",
        event: {
          id: BigInt(raw.id as string),
          orderId: BigInt(raw.o as string),
          type: raw.y as OrderEventType,
          status: raw.s as OrderStatus,
          at: new Date(raw.t as number),
          checkpoint: data.checkpoint,
          reason: data.reason ?? "",
        },
      };
    }
    default:
      return undefined;
  }
}
