import { type BusEvent, decodeBusEvent, encodeBusEvent } from "./event-codec.ts";
import { Subscription } from "./subscription.ts";
import type {
  ActivityRecord,
  EventBus,
  OrderEventRecord,
  StatusEvent,
  StatusSubscription,
  SubscribeOptions,
} from "./types.ts";

/**
 * The event bus of a single process: what is published here reaches this process's subscribers.
 * Dispatch is by key (user id, order id), so an event costs only its own subscribers. The
 * PostgreSQL bus feeds one of these from LISTEN/NOTIFY.
 */
export class LocalEventBus implements EventBus {
  private relay: EventRelay | undefined;
  private readonly activityTopics = new Topics<ActivityRecord>();
  private readonly orderTopics = new Topics<OrderEventRecord>();
  /** @internal used by LocalStatusSubscription */
  readonly statusTopics = new Topics<StatusEvent, LocalStatusSubscription>();

  activities(userId: bigint, options: SubscribeOptions): Subscription<ActivityRecord> {
    return this.activityTopics.subscribe(userId, options);
  }

  orderEvents(orderId: bigint, options: SubscribeOptions): Subscription<OrderEventRecord> {
    return this.orderTopics.subscribe(orderId, options);
  }

  statuses(options: SubscribeOptions & { origin?: string }): StatusSubscription {
    return new LocalStatusSubscription(this, options);
  }

  /**
   * Shares events with other processes on the same database (for example cluster workers on one
   * SQLite file): what is published here is also sent through `relay`, and what arrives through
   * it is delivered here.
   */
  connect(relay: EventRelay): void {
    this.relay = relay;
    relay.onReceive((payload) => {
      const event = decodeBusEvent(payload);
      if (event !== undefined) this.deliver(event);
    });
  }

  publishActivity(activity: ActivityRecord): void {
    this.publish({ kind: "activity", activity });
  }

  publishOrderEvent(event: OrderEventRecord): void {
    this.publish({ kind: "order", event });
  }

  /** Delivers a status change to every follower of the user but the one that made it. */
  publishStatus(event: StatusEvent): void {
    this.publish({ kind: "status", status: event });
  }

  /** Hands an event to this process's subscribers only. */
  deliver(event: BusEvent): void {
    switch (event.kind) {
      case "activity":
        this.activityTopics.publish(event.activity.userId, event.activity);
        break;
      case "order":
        this.orderTopics.publish(event.event.orderId, event.event);
        break;
      case "status": {
        const status = event.status;
        this.statusTopics.publish(
          status.userId,
          status,
          (s) => status.origin === undefined || s.origin !== status.origin,
        );
        break;
      }
    }
  }

  private publish(event: BusEvent): void {
    this.deliver(event);
    this.relay?.send(encodeBusEvent(event));
  }

  /** Ends every subscription with `reason`, or cleanly without one (for shutdown). */
  closeAll(reason?: unknown): void {
    this.activityTopics.closeAll(reason);
    this.orderTopics.closeAll(reason);
    this.statusTopics.closeAll(reason);
  }
}

/** A channel to the other processes that share the database. */
export interface EventRelay {
  send(payload: string): void;
  onReceive(listener: (payload: string) => void): void;
}

/** Subscriptions grouped by key. */
class Topics<T, S extends Subscription<T> = Subscription<T>> {
  private readonly byKey = new Map<bigint, Set<S>>();

  subscribe(key: bigint, options: SubscribeOptions): Subscription<T> {
    const subscription: Subscription<T> = new Subscription<T>({
      ...options,
      onClose: () => this.remove(key, subscription as S),
    });
    if (!subscription.isClosed) this.add(key, subscription as S);
    return subscription;
  }

  publish(key: bigint, value: T, filter?: (subscription: S) => boolean): void {
    const subscribers = this.byKey.get(key);
    if (subscribers === undefined) return;
    for (const subscription of subscribers) {
      if (filter === undefined || filter(subscription)) subscription.push(value);
    }
  }

  add(key: bigint, subscription: S): void {
    let set = this.byKey.get(key);
    if (set === undefined) {
      set = new Set();
      this.byKey.set(key, set);
    }
    set.add(subscription);
  }

  remove(key: bigint, subscription: S): void {
    const set = this.byKey.get(key);
    if (set === undefined) return;
    set.delete(subscription);
    if (set.size === 0) this.byKey.delete(key);
  }

  closeAll(reason?: unknown): void {
    for (const set of [...this.byKey.values()]) {
      for (const subscription of [...set]) {
        if (reason === undefined) subscription.close();
        else subscription.fail(reason);
      }
    }
  }
}

class LocalStatusSubscription extends Subscription<StatusEvent> implements StatusSubscription {
  readonly origin: string | undefined;
  private readonly bus: LocalEventBus;
  private readonly followed = new Set<bigint>();

  constructor(bus: LocalEventBus, options: SubscribeOptions & { origin?: string }) {
    super(options);
    this.bus = bus;
    this.origin = options.origin;
  }

  follow(userId: bigint): void {
    if (this.isClosed || this.followed.has(userId)) return;
    this.followed.add(userId);
    this.bus.statusTopics.add(userId, this);
  }

  protected override closed(): void {
    for (const userId of this.followed) this.bus.statusTopics.remove(userId, this);
    this.followed.clear();
  }
}
