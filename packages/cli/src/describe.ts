import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import {
  type Money,
  type OrderEvent,
  OrderEventTypeSchema,
  OrderStatusSchema,
} from "@keel/gen/order/v1/order_pb";
import { type User, UserStatusSchema } from "@keel/gen/user/v1/user_pb";
import { enumName } from "./enum-name.ts";

// One-line descriptions of messages, for the commands' human output.

/** `user 7 "ada" <ada@example.com>, ACTIVE`. */
export function describeUser(user: User | undefined): string {
  if (user === undefined) return "(no user)";
  return `user ${user.userId} "${user.username}" <${user.email}>, ${enumName(UserStatusSchema, user.status)}`;
}

/** `42.50 USD`: minor units shown with two decimals (keel's examples use USD). */
export function describeMoney(money: Money | undefined): string {
  if (money === undefined) return "(no amount)";
  const minor = money.amountMinor;
  const sign = minor < 0n ? "-" : "";
  const abs = minor < 0n ? -minor : minor;
  return `${sign}${abs / 100n}.${String(abs % 100n).padStart(2, "0")} ${money.currencyCode}`;
}

/** `#3 SHIPPED → SHIPPED at 12:00:01.123` with the checkpoint or reason when there is one. */
export function describeOrderEvent(event: OrderEvent | undefined): string {
  if (event === undefined) return "(no event)";
  const type = enumName(OrderEventTypeSchema, event.type).padEnd(10);
  const status = enumName(OrderStatusSchema, event.status);
  const checkpoint =
    event.checkpoint === undefined
      ? ""
      : `: ${event.checkpoint.location} ${event.checkpoint.note}`.trimEnd();
  const reason = event.reason === "" ? "" : ` (${event.reason})`;
  return `#${event.eventId} ${type} → ${status} at ${clock(event.time)}${checkpoint}${reason}`;
}

/** The time of day of a timestamp, `12:00:01.123` (UTC). */
export function clock(time: Timestamp | undefined): string {
  return time === undefined ? "?" : timestampDate(time).toISOString().slice(11, 23);
}
