import pg from "pg";
import { decodeBusEvent } from "../event-codec.ts";
import { LocalEventBus } from "../local-event-bus.ts";
import { StoreError } from "../store-error.ts";
import type { Subscription } from "../subscription.ts";
import type {
  ActivityRecord,
  EventBus,
  OrderEventRecord,
  StatusSubscription,
  SubscribeOptions,
} from "../types.ts";

export interface PgEventBusOptions {
  connectionString: string;
  /** The NOTIFY channel, one per schema so that separate deployments on one database stay apart. */
  channel: string;
  onError: (err: unknown) => void;
}

/**
 * Events across every instance that shares the database: writers NOTIFY in the transaction that
 * records the event (so it is sent exactly when the change commits), and each instance LISTENs on
 * one dedicated connection and hands what arrives to its local subscribers.
 *
 * If that connection is lost, events could be missed while it is down, so every open subscription
 * is ended with `unavailable` (clients reconnect and resume from what they saw) and the listener
 * reconnects with backoff.
 */
export class PgEventBus implements EventBus {
  private readonly local = new LocalEventBus();
  private readonly options: PgEventBusOptions;
  private client: pg.Client | undefined;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(options: PgEventBusOptions) {
    this.options = options;
  }

  /** Connects and starts listening; resolves once LISTEN is in effect. */
  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.options.connectionString });
    client.on("notification", (message) => {
      if (message.channel !== this.options.channel || message.payload === undefined) return;
      this.dispatch(message.payload);
    });
    client.on("error", (err) => this.lost(client, err));
    client.on("end", () => this.lost(client, new Error("connection ended")));
    try {
      await client.connect();
      await client.query(`LISTEN ${this.options.channel}`);
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
  }

  activities(userId: bigint, options: SubscribeOptions): Subscription<ActivityRecord> {
    return this.local.activities(userId, options);
  }

  orderEvents(orderId: bigint, options: SubscribeOptions): Subscription<OrderEventRecord> {
    return this.local.orderEvents(orderId, options);
  }

  statuses(options: SubscribeOptions & { origin?: string }): StatusSubscription {
    return this.local.statuses(options);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.local.closeAll();
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }

  private dispatch(payload: string): void {
    let event: ReturnType<typeof decodeBusEvent>;
    try {
      event = decodeBusEvent(payload);
    } catch (err) {
      this.options.onError(err);
      return;
    }
    if (event !== undefined) this.local.deliver(event);
  }

  private lost(client: pg.Client, err: unknown): void {
    if (this.closed || this.client !== client) return;
    this.client = undefined;
    this.options.onError(err);
    client.end().catch(() => {});
    this.local.closeAll(
      new StoreError("unavailable", "lost the live event feed from the database; reconnect", {
        cause: err,
      }),
    );
    this.reconnect(250);
  }

  private reconnect(delayMs: number): void {
    this.retryTimer = setTimeout(() => {
      if (this.closed) return;
      this.start().catch((err: unknown) => {
        this.options.onError(err);
        this.reconnect(Math.min(delayMs * 2, 10_000));
      });
    }, delayMs);
    this.retryTimer.unref();
  }
}
