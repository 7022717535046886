import { CheckpointStatus, OrderEventType, OrderStatus } from "@keel/gen/order/v1/order_pb";
import type pg from "pg";
import type { BusEvent } from "../event-codec.ts";
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
import type { Queryable } from "./pg-store.ts";

type Transaction = <T>(body: (client: pg.PoolClient) => Promise<T>) => Promise<T>;
type Notify = (client: Queryable, event: BusEvent) => Promise<void>;

// biome-ignore lint/suspicious/noExplicitAny: rows of pg queries are untyped
type PgRow = any;

/** Orders in PostgreSQL. Every change locks its order row, so order events are in commit order. */
export class PgOrders {
  private readonly pool: pg.Pool;
  private readonly transaction: Transaction;
  private readonly notify: Notify;

  constructor(pool: pg.Pool, transaction: Transaction, notify: Notify) {
    this.pool = pool;
    this.transaction = transaction;
    this.notify = notify;
  }

  async create(input: NewOrder): Promise<{ order: OrderRecord; created: boolean }> {
    try {
      return await this.transaction(async (c) => {
        const existing = await this.byKey(c, input);
        if (existing !== undefined) return { order: existing, created: false };
        const now = new Date();
        const totalMinor = orderTotal(input.items);
        const { rows } = await c.query({
          name: "keel_orders_insert",
          text: `INSERT INTO orders (user_id, status, currency, total_minor, idempotency_key,
                                     request_fingerprint, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id`,
          values: [
            input.userId,
            OrderStatus.PENDING_PAYMENT,
            input.currency,
            totalMinor,
            input.idempotencyKey ?? null,
            input.fingerprint ?? null,
            now,
          ],
        });
        const id = BigInt(rows[0].id);
        // Every item in one statement, whatever their number.
        await c.query({
          name: "keel_order_items_insert",
          text: `INSERT INTO order_items (order_id, position, sku, name, quantity, unit_price_minor)
                 SELECT $1, item.position - 1, item.sku, item.name, item.quantity, item.price
                 FROM unnest($2::text[], $3::text[], $4::int4[], $5::int8[])
                      WITH ORDINALITY AS item (sku, name, quantity, price, position)`,
          values: [
            id,
            input.items.map((item) => item.sku),
            input.items.map((item) => item.name),
            input.items.map((item) => item.quantity),
            input.items.map((item) => item.unitPriceMinor),
          ],
        });
        await this.insertEvent(c, id, OrderEventType.CREATED, OrderStatus.PENDING_PAYMENT, now, {});
        // Everything a new order holds was just written: it is not read back.
        const order: OrderRecord = {
          id,
          userId: input.userId,
          status: OrderStatus.PENDING_PAYMENT,
          currency: input.currency,
          items: input.items.map((item) => ({ ...item })),
          totalMinor,
          createdAt: now,
          updatedAt: now,
          payment: undefined,
          shipment: undefined,
          cancelReason: "",
        };
        return { order, created: true };
      });
    } catch (err) {
      // Two first attempts with one key raced; the loser answers like a retry.
      if ((err as { constraint?: string }).constraint === "orders_idempotency_unique") {
        const existing = await this.byKey(this.pool, input);
        if (existing !== undefined) return { order: existing, created: false };
      }
      throw err;
    }
  }

  async get(c: Queryable, id: bigint): Promise<OrderRecord | undefined> {
    const { rows } = await c.query("SELECT * FROM orders WHERE id = $1", [id]);
    return (await this.toOrders(c, rows))[0];
  }

  /** Orders by id, with their items, payment and checkpoints, in at most four queries. */
  async byIds(ids: bigint[]): Promise<Map<bigint, OrderRecord>> {
    const { rows } = await this.pool.query({
      name: "keel_orders_by_ids",
      text: "SELECT * FROM orders WHERE id = ANY($1::int8[])",
      values: [ids],
    });
    const orders = await this.toOrders(this.pool, rows);
    return new Map(orders.map((order) => [order.id, order]));
  }

  async list(query: ListOrdersQuery): Promise<OrderRecord[]> {
    const { rows } =
      query.status === undefined
        ? await this.pool.query(
            "SELECT * FROM orders WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            [query.userId, query.afterId ?? 0n, query.limit],
          )
        : await this.pool.query(
            "SELECT * FROM orders WHERE user_id = $1 AND status = $2 AND id > $3 ORDER BY id LIMIT $4",
            [query.userId, query.status, query.afterId ?? 0n, query.limit],
          );
    return this.toOrders(this.pool, rows);
  }

  cancel(id: bigint, reason: string): Promise<OrderRecord> {
    return this.transition(
      id,
      "cancel",
      OrderStatus.CANCELLED,
      OrderEventType.CANCELLED,
      async (c, now) => {
        await c.query("UPDATE orders SET cancel_reason = $1, updated_at = $2 WHERE id = $3", [
          reason,
          now,
          id,
        ]);
        return { reason };
      },
    );
  }

  async pay(
    id: bigint,
    payment: { amountMinor: bigint; currency: string; idempotencyKey: string },
  ): Promise<{ order: OrderRecord; payment: PaymentRecord; created: boolean }> {
    return this.transaction(async (c) => {
      const locked = await this.lock(c, id);
      if (locked.rows[0] === undefined) throw orderNotFound(id);
      const previous = await c.query({
        name: "keel_payments_by_key",
        text: "SELECT * FROM payments WHERE order_id = $1 AND idempotency_key = $2",
        values: [id, payment.idempotencyKey],
      });
      if (previous.rows[0] !== undefined) {
        return {
          order: await this.mustGet(c, id),
          payment: toPayment(previous.rows[0]),
          created: false,
        };
      }
      checkTransition(id, locked.rows[0].status as OrderStatus, "pay");
      const now = new Date();
      await c.query({
        name: "keel_payments_insert",
        text: `INSERT INTO payments (order_id, idempotency_key, amount_minor, currency, paid_at)
               VALUES ($1, $2, $3, $4, $5)`,
        values: [id, payment.idempotencyKey, payment.amountMinor, payment.currency, now],
      });
      // The updated row comes back with the update: the order is not read again.
      const updated = await c.query({
        name: "keel_orders_set_status",
        text: "UPDATE orders SET status = $1, updated_at = $2 WHERE id = $3 RETURNING *",
        values: [OrderStatus.PAID, now, id],
      });
      await this.insertEvent(c, id, OrderEventType.PAID, OrderStatus.PAID, now, {});
      const order = (await this.toOrders(c, updated.rows))[0] as OrderRecord;
      return { order, payment: order.payment as PaymentRecord, created: true };
    });
  }

  ship(id: bigint, shipment: { carrier: string; trackingNumber: string }): Promise<OrderRecord> {
    return this.transition(
      id,
      "ship",
      OrderStatus.SHIPPED,
      OrderEventType.SHIPPED,
      async (c, now) => {
        await c.query(
          "UPDATE orders SET carrier = $1, tracking_number = $2, shipped_at = $3, updated_at = $3 WHERE id = $4",
          [shipment.carrier, shipment.trackingNumber, now, id],
        );
        return {};
      },
    );
  }

  addCheckpoint(id: bigint, checkpoint: CheckpointRecord): Promise<OrderRecord> {
    const delivered = checkpoint.status === CheckpointStatus.DELIVERED;
    return this.transition(
      id,
      "checkpoint",
      delivered ? OrderStatus.DELIVERED : OrderStatus.SHIPPED,
      delivered ? OrderEventType.DELIVERED : OrderEventType.CHECKPOINT,
      async (c, now) => {
        await c.query(
          "UPDATE orders SET delivered_at = COALESCE($1, delivered_at), updated_at = $2 WHERE id = $3",
          [delivered ? checkpoint.time : null, now, id],
        );
        return { checkpoint };
      },
    );
  }

  async events(
    orderId: bigint,
    query: { afterId?: bigint; limit: number },
  ): Promise<OrderEventRecord[]> {
    const { rows } = await this.pool.query(
      "SELECT * FROM order_events WHERE order_id = $1 AND id > $2 ORDER BY id LIMIT $3",
      [orderId, query.afterId ?? 0n, query.limit],
    );
    return rows.map(toEvent);
  }

  private async byKey(c: Queryable, input: NewOrder): Promise<OrderRecord | undefined> {
    if (input.idempotencyKey === undefined) return undefined;
    const { rows } = await c.query(
      "SELECT * FROM orders WHERE user_id = $1 AND idempotency_key = $2",
      [input.userId, input.idempotencyKey],
    );
    if (rows[0] === undefined) return undefined;
    if (rows[0].request_fingerprint !== (input.fingerprint ?? null)) {
      throw idempotencyKeyReused();
    }
    return (await this.toOrders(c, rows))[0];
  }

  private transition(
    id: bigint,
    action: Parameters<typeof checkTransition>[2],
    status: OrderStatus,
    type: OrderEventType,
    change: (
      c: pg.PoolClient,
      now: Date,
    ) => Promise<{ checkpoint?: CheckpointRecord; reason?: string }>,
  ): Promise<OrderRecord> {
    return this.transaction(async (c) => {
      const { rows } = await this.lock(c, id);
      if (rows[0] === undefined) throw orderNotFound(id);
      const current = rows[0].status as OrderStatus;
      checkTransition(id, current, action);
      const now = new Date();
      const data = await change(c, now);
      if (status !== current) {
        await c.query("UPDATE orders SET status = $1, updated_at = $2 WHERE id = $3", [
          status,
          now,
          id,
        ]);
      }
      await this.insertEvent(c, id, type, status, now, data);
      return this.mustGet(c, id);
    });
  }

  /** Locks an order's row for the transaction; its status, or no row when there is no order. */
  private lock(c: Queryable, id: bigint) {
    return c.query({
      name: "keel_orders_lock",
      text: "SELECT status FROM orders WHERE id = $1 FOR UPDATE",
      values: [id],
    });
  }

  private async insertEvent(
    c: Queryable,
    orderId: bigint,
    type: OrderEventType,
    status: OrderStatus,
    now: Date,
    data: { checkpoint?: CheckpointRecord; reason?: string },
  ): Promise<void> {
    const { rows } = await c.query({
      name: "keel_order_events_insert",
      text: `INSERT INTO order_events (order_id, type, status, data, created_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING id`,
      values: [orderId, type, status, encodeEventData(data), now],
    });
    const event: OrderEventRecord = {
      id: BigInt(rows[0].id),
      orderId,
      type,
      status,
      at: now,
      checkpoint: data.checkpoint,
      reason: data.reason ?? "",
    };
    await this.notify(c, { kind: "order", event });
  }

  private async mustGet(c: Queryable, id: bigint): Promise<OrderRecord> {
    const order = await this.get(c, id);
    if (order === undefined) throw orderNotFound(id);
    return order;
  }

  /**
   * Orders with their items, payment and checkpoints, in at most three more queries whatever the
   * number of orders (one query per order made a page of 1,000 cost 2,001 round trips).
   */
  private async toOrders(c: Queryable, rows: PgRow[]): Promise<OrderRecord[]> {
    if (rows.length === 0) return [];
    const ids = rows.map((row) => row.id as string);
    const shipped = rows.filter((row) => row.shipped_at !== null).map((row) => row.id as string);
    const reads: (() => Promise<{ rows: PgRow[] }>)[] = [
      () =>
        c.query({
          name: "keel_order_items_of",
          text: `SELECT order_id, sku, name, quantity, unit_price_minor FROM order_items
                 WHERE order_id = ANY($1::bigint[]) ORDER BY order_id, position`,
          values: [ids],
        }),
      () =>
        c.query({
          name: "keel_payments_of",
          text: "SELECT * FROM payments WHERE order_id = ANY($1::bigint[]) ORDER BY order_id, id",
          values: [ids],
        }),
      () =>
        shipped.length === 0
          ? Promise.resolve({ rows: [] })
          : c.query(
              `SELECT * FROM order_events WHERE order_id = ANY($1::bigint[]) AND type IN ($2, $3)
               ORDER BY order_id, id`,
              [shipped, OrderEventType.CHECKPOINT, OrderEventType.DELIVERED],
            ),
    ];
    // On the pool, each on a connection of its own at once; a transaction's one connection takes
    // one statement at a time (pg 8 queues more with a deprecation warning; pg 9 refuses them).
    const results: { rows: PgRow[] }[] = [];
    if (c === this.pool) results.push(...(await Promise.all(reads.map((read) => read()))));
    else for (const read of reads) results.push(await read());
    const [items, payments, checkpoints] = results as [
      { rows: PgRow[] },
      { rows: PgRow[] },
      { rows: PgRow[] },
    ];
    const itemsOf = groupByOrder(items.rows, (item: PgRow) => ({
      sku: item.sku,
      name: item.name,
      quantity: item.quantity,
      unitPriceMinor: BigInt(item.unit_price_minor),
    }));
    const paymentsOf = groupByOrder(payments.rows, toPayment);
    const checkpointsOf = groupByOrder(
      checkpoints.rows,
      (e: PgRow) => toEvent(e).checkpoint as CheckpointRecord,
    );
    return rows.map((row) => {
      const id = BigInt(row.id);
      return {
        id,
        userId: BigInt(row.user_id),
        status: row.status as OrderStatus,
        currency: row.currency,
        items: itemsOf.get(id) ?? [],
        totalMinor: BigInt(row.total_minor),
        createdAt: row.created_at,
        updatedAt: row.updated_at,
        payment: paymentsOf.get(id)?.[0],
        shipment:
          row.shipped_at === null
            ? undefined
            : {
                carrier: row.carrier,
                trackingNumber: row.tracking_number,
                shippedAt: row.shipped_at,
                deliveredAt: row.delivered_at ?? undefined,
                checkpoints: checkpointsOf.get(id) ?? [],
              },
        cancelReason: row.cancel_reason,
      };
    });
  }
}

function toPayment(row: PgRow): PaymentRecord {
  return {
    id: BigInt(row.id),
    amountMinor: BigInt(row.amount_minor),
    currency: row.currency,
    idempotencyKey: row.idempotency_key,
    paidAt: row.paid_at,
  };
}

function toEvent(row: PgRow): OrderEventRecord {
  const data = decodeEventData(row.data);
  return {
    id: BigInt(row.id),
    orderId: BigInt(row.order_id),
    type: row.type as OrderEventType,
    status: row.status as OrderStatus,
    at: row.created_at,
    checkpoint: data.checkpoint,
    reason: data.reason ?? "",
  };
}
