import { createHash } from "node:crypto";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  type Checkpoint,
  CheckpointStatus,
  type LineItem,
  type Money,
} from "@keel/gen/order/v1/order_pb";
import type { CheckpointRecord, OrderItemRecord } from "@keel/store";
import type { Violations } from "./violations.ts";

/** The rules orders follow; each adds what is wrong to `v` under the field's name. */

const maxItems = 100;
const maxQuantity = 10_000;
// With at most 100 items of 10000 units, totals stay far below 2^63.
const maxUnitPriceMinor = 1_000_000_000_000n;
const currencyPattern = /^[A-Z]{3}$/;
const maxKeyLength = 128;

export function checkOrderId(v: Violations, field: string, id: bigint): void {
  if (id <= 0n) v.add(field, "must be a positive order id");
}

export function checkLength(
  v: Violations,
  field: string,
  value: string,
  min: number,
  max: number,
): void {
  if (value.length < min || value.length > max) {
    v.add(field, min === 0 ? `at most ${max} characters` : `must be ${min} to ${max} characters`);
  }
}

export function checkIdempotencyKey(
  v: Violations,
  field: string,
  key: string,
  required: boolean,
): void {
  checkLength(v, field, key, required ? 1 : 0, maxKeyLength);
}

export function checkMoney(v: Violations, field: string, money: Money | undefined): void {
  if (money === undefined) {
    v.add(field, "required");
    return;
  }
  if (!currencyPattern.test(money.currencyCode)) {
    v.add(`${field}.currency_code`, "must be an ISO 4217 code such as USD");
  }
  if (money.amountMinor < 0n || money.amountMinor > maxUnitPriceMinor) {
    v.add(`${field}.amount_minor`, `must be 0 to ${maxUnitPriceMinor}`);
  }
}

/** Checks the items of a new order and returns them with their common currency. */
export function checkItems(
  v: Violations,
  items: readonly LineItem[],
): { currency: string; items: OrderItemRecord[] } {
  if (items.length === 0 || items.length > maxItems)
    v.add("items", `must have 1 to ${maxItems} items`);
  const currency = items[0]?.unitPrice?.currencyCode ?? "";
  items.forEach((item, i) => {
    const field = `items[${i}]`;
    checkLength(v, `${field}.sku`, item.sku, 1, 64);
    checkLength(v, `${field}.name`, item.name, 1, 200);
    if (item.quantity < 1 || item.quantity > maxQuantity) {
      v.add(`${field}.quantity`, `must be 1 to ${maxQuantity}`);
    }
    checkMoney(v, `${field}.unit_price`, item.unitPrice);
    if (item.unitPrice !== undefined && item.unitPrice.currencyCode !== currency) {
      v.add(
        `${field}.unit_price.currency_code`,
        `every item must be in ${currency}, like items[0]`,
      );
    }
  });
  return {
    currency,
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

const knownCheckpointStatuses = new Set<number>([
  CheckpointStatus.IN_TRANSIT,
  CheckpointStatus.OUT_FOR_DELIVERY,
  CheckpointStatus.DELIVERED,
  CheckpointStatus.EXCEPTION,
]);

/** Checks a carrier's checkpoint; an unset time means now. */
export function checkCheckpoint(
  v: Violations,
  field: string,
  checkpoint: Checkpoint | undefined,
): CheckpointRecord {
  if (checkpoint === undefined) {
    v.add(field, "required");
    return { location: "", status: CheckpointStatus.UNSPECIFIED, time: new Date(), note: "" };
  }
  checkLength(v, `${field}.location`, checkpoint.location, 1, 200);
  checkLength(v, `${field}.note`, checkpoint.note, 0, 500);
  if (!knownCheckpointStatuses.has(checkpoint.status)) {
    v.add(`${field}.status`, "must be IN_TRANSIT, OUT_FOR_DELIVERY, DELIVERED or EXCEPTION");
  }
  const time = checkpoint.time === undefined ? new Date() : timestampDate(checkpoint.time);
  if (Number.isNaN(time.getTime()) || time.getTime() > Date.now() + 5 * 60_000) {
    v.add(`${field}.time`, "must be a valid time, not in the future");
  }
  return { location: checkpoint.location, status: checkpoint.status, time, note: checkpoint.note };
}
