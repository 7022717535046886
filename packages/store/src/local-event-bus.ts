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

  publishActivity(activity: ActivityRecord): void {
    this.activityTopics.publish(activity.userId, activity);
  }

  publishOrderEvent(event: OrderEventRecord): void {
    this.orderTopics.publish(event.orderId, event);
  }

  /** Delivers a status change to every follower of the user but the one that made it. */
  publishStatus(event: StatusEvent): void {
    this.statusTopics.publish(
      event.userId,
      event,
      (s) => event.origin === undefined || s.origin !== event.origin,
    );
  }

  /** Ends every subscription with `reason`, or cleanly without one (for shutdown). */
  closeAll(reason?: unknown): void {
    this.activityTopics.closeAll(reason);
    this.orderTopics.closeAll(reason);
    this.statusTopics.closeAll(reason);
  }
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
