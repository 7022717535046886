import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import { CheckpointStatus, OrderEventType, OrderStatus } from "@keel/gen/order/v1/order_pb";
import type { LocalEventBus } from "../local-event-bus.ts";
import { decodeEventData, encodeEventData, groupByOrder, orderTotal } from "../order-codec.ts";
import { checkTransition, idempotencyKeyReused, orderNotFound } from "../order-rules.ts";
import type {
  CheckpointRecord,
  ListOrdersQuery,
  NewOrder,
  OrderEventRecord,
  OrderRecord,
  PaymentRecord,
} from "../types.ts";

type Row = Record<string, SQLInputValue>;

/** Orders, payments, shipments and order events in SQLite; methods run synchronously. */
export class SqliteOrders {
  private readonly sql: ReturnType<typeof prepare>;
  private readonly transaction: <T>(body: () => T) => T;
  private readonly bus: LocalEventBus;

  constructor(db: DatabaseSync, transaction: <T>(body: () => T) => T, bus: LocalEventBus) {
    this.sql = prepare(db);
    this.transaction = transaction;
    this.bus = bus;
  }

  create(input: NewOrder): { order: OrderRecord; created: boolean } {
    const now = Date.now();
    const outcome = this.transaction(() => {
      if (input.idempotencyKey !== undefined) {
        const existing = this.sql.byKey.get(input.userId, input.idempotencyKey);
        if (existing !== undefined) {
          if (existing.request_fingerprint !== (input.fingerprint ?? null)) {
            throw idempotencyKeyReused();
          }
          return { order: this.mustGet(existing.id as bigint), created: false, event: undefined };
        }
      }
      const { lastInsertRowid } = this.sql.insertOrder.run(
        input.userId,
        OrderStatus.PENDING_PAYMENT,
        input.currency,
        orderTotal(input.items),
        input.idempotencyKey ?? null,
        input.fingerprint ?? null,
        now,
        now,
      );
      const id = BigInt(lastInsertRowid);
      input.items.forEach((item, position) => {
        this.sql.insertItem.run(
          id,
          position,
          item.sku,
          item.name,
          item.quantity,
          item.unitPriceMinor,
        );
      });
      const event = this.insertEvent(
        id,
        OrderEventType.CREATED,
        OrderStatus.PENDING_PAYMENT,
        now,
        {},
      );
      return { order: this.mustGet(id), created: true, event };
    });
    if (outcome.event !== undefined) this.bus.publishOrderEvent(outcome.event);
    return { order: outcome.order, created: outcome.created };
  }

  get(id: bigint): OrderRecord | undefined {
    return this.toOrders(this.sql.getOrder.all(id))[0];
  }

  list(query: ListOrdersQuery): OrderRecord[] {
    const rows =
      query.status === undefined
        ? this.sql.listOrders.all(query.userId, query.afterId ?? 0n, query.limit)
        : this.sql.listOrdersByStatus.all(
            query.userId,
            query.status,
            query.afterId ?? 0n,
            query.limit,
          );
    return this.toOrders(rows);
  }

  cancel(id: bigint, reason: string): OrderRecord {
    return this.transition(id, "cancel", OrderStatus.CANCELLED, OrderEventType.CANCELLED, (now) => {
      this.sql.setCancelled.run(reason, now, id);
      return { reason };
    });
  }

  pay(
    id: bigint,
    payment: { amountMinor: bigint; currency: string; idempotencyKey: string },
  ): { order: OrderRecord; payment: PaymentRecord; created: boolean } {
    const now = Date.now();
    const outcome = this.transaction(() => {
      const order = this.mustGet(id);
      const previous = this.sql.paymentByKey.get(id, payment.idempotencyKey);
      if (previous !== undefined) {
        return { order, payment: toPayment(previous), created: false, event: undefined };
      }
      checkTransition(id, order.status, "pay");
      this.sql.insertPayment.run(
        id,
        payment.idempotencyKey,
        payment.amountMinor,
        payment.currency,
        now,
      );
      this.sql.setStatus.run(OrderStatus.PAID, now, id);
      const event = this.insertEvent(id, OrderEventType.PAID, OrderStatus.PAID, now, {});
      const paid = this.mustGet(id);
      return { order: paid, payment: paid.payment as PaymentRecord, created: true, event };
    });
    if (outcome.event !== undefined) this.bus.publishOrderEvent(outcome.event);
    return { order: outcome.order, payment: outcome.payment, created: outcome.created };
  }

  ship(id: bigint, shipment: { carrier: string; trackingNumber: string }): OrderRecord {
    return this.transition(id, "ship", OrderStatus.SHIPPED, OrderEventType.SHIPPED, (now) => {
      this.sql.setShipped.run(shipment.carrier, shipment.trackingNumber, now, now, id);
      return {};
    });
  }

  addCheckpoint(id: bigint, checkpoint: CheckpointRecord): OrderRecord {
    const delivered = checkpoint.status === CheckpointStatus.DELIVERED;
    return this.transition(
      id,
      "checkpoint",
      delivered ? OrderStatus.DELIVERED : OrderStatus.SHIPPED,
      delivered ? OrderEventType.DELIVERED : OrderEventType.CHECKPOINT,
      (now) => {
        if (delivered) this.sql.setDelivered.run(checkpoint.time.getTime(), now, id);
        else this.sql.touch.run(now, id);
        return { checkpoint };
      },
    );
  }

  events(orderId: bigint, query: { afterId?: bigint; limit: number }): OrderEventRecord[] {
    return this.sql.events.all(orderId, query.afterId ?? 0n, query.limit).map(toEvent);
  }

  /** Checks the state machine, applies `change` and records the event, in one transaction. */
  private transition(
    id: bigint,
    action: Parameters<typeof checkTransition>[2],
    status: OrderStatus,
    type: OrderEventType,
    change: (now: number) => { checkpoint?: CheckpointRecord; reason?: string },
  ): OrderRecord {
    const now = Date.now();
    const { order, event } = this.transaction(() => {
      const current = this.sql.getOrder.get(id);
      if (current === undefined) throw orderNotFound(id);
      checkTransition(id, Number(current.status) as OrderStatus, action);
      const data = change(now);
      if (status !== Number(current.status)) this.sql.setStatus.run(status, now, id);
      const event = this.insertEvent(id, type, status, now, data);
      return { order: this.mustGet(id), event };
    });
    this.bus.publishOrderEvent(event);
    return order;
  }

  private insertEvent(
    orderId: bigint,
    type: OrderEventType,
    status: OrderStatus,
    now: number,
    data: { checkpoint?: CheckpointRecord; reason?: string },
  ): OrderEventRecord {
    const { lastInsertRowid } = this.sql.insertEvent.run(
      orderId,
      type,
      status,
      encodeEventData(data),
      now,
    );
    return {
      id: BigInt(lastInsertRowid),
      orderId,
      type,
      status,
      at: new Date(now),
      checkpoint: data.checkpoint,
      reason: data.reason ?? "",
    };
  }

  private mustGet(id: bigint): OrderRecord {
    const order = this.get(id);
    if (order === undefined) throw orderNotFound(id);
    return order;
  }

  /**
   * Orders with their items, payment and checkpoints, in at most three more statements whatever
   * the number of orders (ids passed as one JSON array).
   */
  private toOrders(rows: Row[]): OrderRecord[] {
    if (rows.length === 0) return [];
    const ids = idArray(rows);
    const shipped = rows.filter((row) => row.shipped_at !== null);
    const itemsOf = groupByOrder(this.sql.itemsOf.all(ids), (item) => ({
      sku: item.sku as string,
      name: item.name as string,
      quantity: Number(item.quantity),
      unitPriceMinor: item.unit_price_minor as bigint,
    }));
    const paymentsOf = groupByOrder(this.sql.paymentsOf.all(ids), toPayment);
    const checkpointsOf =
      shipped.length === 0
        ? new Map<bigint, CheckpointRecord[]>()
        : groupByOrder(
            this.sql.checkpointsOf.all(
              idArray(shipped),
              OrderEventType.CHECKPOINT,
              OrderEventType.DELIVERED,
            ),
            (e) => toEvent(e).checkpoint as CheckpointRecord,
          );
    return rows.map((row) => {
      const id = row.id as bigint;
      const shippedAt = row.shipped_at as bigint | null;
      const deliveredAt = row.delivered_at as bigint | null;
      return {
        id,
        userId: row.user_id as bigint,
        status: Number(row.status) as OrderStatus,
        currency: row.currency as string,
        items: itemsOf.get(id) ?? [],
        totalMinor: row.total_minor as bigint,
        createdAt: new Date(Number(row.created_at)),
        updatedAt: new Date(Number(row.updated_at)),
        payment: paymentsOf.get(id)?.[0],
        shipment:
          shippedAt === null
            ? undefined
            : {
                carrier: row.carrier as string,
                trackingNumber: row.tracking_number as string,
                shippedAt: new Date(Number(shippedAt)),
                deliveredAt: deliveredAt === null ? undefined : new Date(Number(deliveredAt)),
                checkpoints: checkpointsOf.get(id) ?? [],
              },
        cancelReason: row.cancel_reason as string,
      };
    });
  }
}

/** The rows' ids as a JSON array for `json_each`, digits exactly as stored (never a rounded number). */
function idArray(rows: Row[]): string {
  return `[${rows.map((row) => String(row.id)).join(",")}]`;
}

function toPayment(row: Row): PaymentRecord {
  return {
    id: row.id as bigint,
    amountMinor: row.amount_minor as bigint,
    currency: row.currency as string,
    idempotencyKey: row.idempotency_key as string,
    paidAt: new Date(Number(row.paid_at)),
  };
}

function toEvent(row: Row): OrderEventRecord {
  const data = decodeEventData(row.data as string);
  return {
    id: row.id as bigint,
    orderId: row.order_id as bigint,
    type: Number(row.type) as OrderEventType,
    status: Number(row.status) as OrderStatus,
    at: new Date(Number(row.created_at)),
    checkpoint: data.checkpoint,
    reason: data.reason ?? "",
  };
}

function prepare(db: DatabaseSync) {
  const statements = {
    byKey: db.prepare(
      "SELECT id, request_fingerprint FROM orders WHERE user_id = ? AND idempotency_key = ?",
    ),
    insertOrder: db.prepare(`
      INSERT INTO orders (user_id, status, currency, total_minor, idempotency_key,
                          request_fingerprint, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
    insertItem: db.prepare(`
      INSERT INTO order_items (order_id, position, sku, name, quantity, unit_price_minor)
      VALUES (?, ?, ?, ?, ?, ?)`),
    getOrder: db.prepare("SELECT * FROM orders WHERE id = ?"),
    // Children of many orders at once: the ids come as one JSON array, `[1,2,3]`.
    itemsOf: db.prepare(
      `SELECT * FROM order_items WHERE order_id IN (SELECT value FROM json_each(?))
       ORDER BY order_id, position`,
    ),
    paymentsOf: db.prepare(
      "SELECT * FROM payments WHERE order_id IN (SELECT value FROM json_each(?)) ORDER BY order_id, id",
    ),
    paymentByKey: db.prepare("SELECT * FROM payments WHERE order_id = ? AND idempotency_key = ?"),
    checkpointsOf: db.prepare(
      `SELECT * FROM order_events WHERE order_id IN (SELECT value FROM json_each(?))
       AND type IN (?, ?) ORDER BY order_id, id`,
    ),
    listOrders: db.prepare("SELECT * FROM orders WHERE user_id = ? AND id > ? ORDER BY id LIMIT ?"),
    listOrdersByStatus: db.prepare(
      "SELECT * FROM orders WHERE user_id = ? AND status = ? AND id > ? ORDER BY id LIMIT ?",
    ),
    insertPayment: db.prepare(`
      INSERT INTO payments (order_id, idempotency_key, amount_minor, currency, paid_at)
      VALUES (?, ?, ?, ?, ?)`),
    setStatus: db.prepare("UPDATE orders SET status = ?, updated_at = ? WHERE id = ?"),
    setCancelled: db.prepare("UPDATE orders SET cancel_reason = ?, updated_at = ? WHERE id = ?"),
    setShipped: db.prepare(
      "UPDATE orders SET carrier = ?, tracking_number = ?, shipped_at = ?, updated_at = ? WHERE id = ?",
    ),
    setDelivered: db.prepare("UPDATE orders SET delivered_at = ?, updated_at = ? WHERE id = ?"),
    touch: db.prepare("UPDATE orders SET updated_at = ? WHERE id = ?"),
    insertEvent: db.prepare(
      "INSERT INTO order_events (order_id, type, status, data, created_at) VALUES (?, ?, ?, ?, ?)",
    ),
    events: db.prepare(
      "SELECT * FROM order_events WHERE order_id = ? AND id > ? ORDER BY id LIMIT ?",
    ),
  } satisfies Record<string, StatementSync>;
  for (const statement of Object.values(statements)) statement.setReadBigInts(true);
  return statements;
}
