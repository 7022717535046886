import { timestampDate } from "@bufbuild/protobuf/wkt";
import { CheckpointStatus, OrderStatus } from "@keel/gen/order/v1/order_pb";
import { quote } from "@keel/interceptors";
import { z } from "zod";
import { userId } from "./user-schemas.ts";

/**
 * The shape rules of OrderService's requests, checked by the validation interceptor before a
 * handler runs (UpdateShipmentRequest by UpdateShipment itself, checkpoint by checkpoint).
 */

const orderId = z.bigint().positive({ error: "must be a positive order id" });
const length = (min: number, max: number) =>
  z
    .string()
    .min(min, {
      error: min === 0 ? `at most ${max} characters` : `must be ${min} to ${max} characters`,
    })
    .max(max, {
      error: min === 0 ? `at most ${max} characters` : `must be ${min} to ${max} characters`,
    });
// With at most 100 items of 10000 units, totals stay far below 2^63.
const maxAmountMinor = 1_000_000_000_000n;
const money = z.object({
  currencyCode: z.string().regex(/^[A-Z]{3}$/, { error: "must be an ISO 4217 code such as USD" }),
  amountMinor: z
    .bigint()
    .min(0n, { error: `must be 0 to ${maxAmountMinor}` })
    .max(maxAmountMinor, { error: `must be 0 to ${maxAmountMinor}` }),
});
const required = <T extends z.ZodType>(schema: T) =>
  z.unknown().superRefine((value, ctx) => {
    if (value === undefined) ctx.addIssue({ code: "custom", message: "required" });
    else
      for (const issue of schema.safeParse(value).error?.issues ?? [])
        ctx.addIssue({ ...issue, code: "custom" });
  });
const idempotencyKey = length(0, 128);
const knownOrderStatuses = new Set<number>([
  OrderStatus.PENDING_PAYMENT,
  OrderStatus.PAID,
  OrderStatus.SHIPPED,
  OrderStatus.DELIVERED,
  OrderStatus.CANCELLED,
]);
const knownCheckpointStatuses = new Set<number>([
  CheckpointStatus.IN_TRANSIT,
  CheckpointStatus.OUT_FOR_DELIVERY,
  CheckpointStatus.DELIVERED,
  CheckpointStatus.EXCEPTION,
]);

const lineItem = z.object({
  sku: length(1, 64),
  name: length(1, 200),
  quantity: z
    .number()
    .int()
    .min(1, { error: "must be 1 to 10000" })
    .max(10_000, { error: "must be 1 to 10000" }),
  unitPrice: required(money),
});

const createOrderRequest = z
  .object({
    userId,
    items: z
      .array(lineItem)
      .min(1, { error: "must have 1 to 100 items" })
      .max(100, { error: "must have 1 to 100 items" }),
    idempotencyKey,
  })
  .superRefine((req, ctx) => {
    const currency = (req.items[0]?.unitPrice as { currencyCode?: string } | undefined)
      ?.currencyCode;
    req.items.forEach((item, i) => {
      const code = (item.unitPrice as { currencyCode?: string } | undefined)?.currencyCode;
      if (code !== undefined && code !== currency) {
        ctx.addIssue({
          code: "custom",
          path: ["items", i, "unitPrice", "currencyCode"],
          message: `every item must be in ${quote(currency)}, like items[0]`,
        });
      }
    });
  });

const checkpoint = z.object({
  location: length(1, 200),
  status: z.number().refine((s) => knownCheckpointStatuses.has(s), {
    error: "must be IN_TRANSIT, OUT_FOR_DELIVERY, DELIVERED or EXCEPTION",
  }),
  note: length(0, 500),
  time: z
    .object({ seconds: z.bigint(), nanos: z.number() })
    .optional()
    .refine(
      (t) => {
        if (t === undefined) return true;
        const ms = timestampDate(t as Parameters<typeof timestampDate>[0]).getTime();
        return Number.isFinite(ms) && ms <= Date.now() + 5 * 60_000;
      },
      { error: "must be a valid time, not in the future" },
    ),
});

export const orderRequestSchemas = {
  "order.v1.CreateOrderRequest": createOrderRequest,
  "order.v1.GetOrderRequest": z.object({ orderId }),
  "order.v1.ListOrdersRequest": z.object({
    userId,
    status: z.number().refine((s) => s === OrderStatus.UNSPECIFIED || knownOrderStatuses.has(s), {
      error: "unknown status",
    }),
    pageSize: z.number().int().min(0, { error: "must be 0 (meaning 50) to 1000" }),
    pageToken: z.string().max(512, { error: "is not a token this service issued" }),
  }),
  "order.v1.CancelOrderRequest": z.object({ orderId, reason: length(0, 500) }),
  "order.v1.PayOrderRequest": z.object({
    orderId,
    amount: required(money),
    idempotencyKey: length(1, 128),
  }),
  "order.v1.ShipOrderRequest": z.object({
    orderId,
    carrier: length(1, 64),
    trackingNumber: length(1, 128),
  }),
  "order.v1.UpdateShipmentRequest": z.object({ orderId, checkpoint: required(checkpoint) }),
  "order.v1.TrackOrderRequest": z.object({ orderId }),
} satisfies Record<string, z.ZodType>;
