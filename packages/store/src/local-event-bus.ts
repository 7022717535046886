import { Subscription } from "./subscription.ts";
import type {
  ActivityRecord,
  EventBus,
  StatusEvent,
  StatusSubscription,
  SubscribeOptions,
} from "./types.ts";

/**
 * The event bus of a single process: events published by this process's store reach this
 * process's subscribers. Dispatch is by user id, so an event costs only its own subscribers.
 */
export class LocalEventBus implements EventBus {
  private readonly activityTopics = new Map<bigint, Set<Subscription<ActivityRecord>>>();
  /** @internal used by LocalStatusSubscription */
  readonly statusTopics = new Map<bigint, Set<LocalStatusSubscription>>();

  activities(userId: bigint, options: SubscribeOptions): Subscription<ActivityRecord> {
    const subscription: Subscription<ActivityRecord> = new Subscription({
      ...options,
      onClose: () => removeFrom(this.activityTopics, userId, subscription),
    });
    if (!subscription.isClosed) addTo(this.activityTopics, userId, subscription);
    return subscription;
  }

  statuses(options: SubscribeOptions & { origin?: string }): StatusSubscription {
    return new LocalStatusSubscription(this, options);
  }

  /** Delivers a recorded activity to the subscribers of its user. */
  publishActivity(activity: ActivityRecord): void {
    const subscribers = this.activityTopics.get(activity.userId);
    if (subscribers === undefined) return;
    for (const subscription of subscribers) subscription.push(activity);
  }

  /** Delivers a status change to every follower of the user but the one that made it. */
  publishStatus(event: StatusEvent): void {
    const subscribers = this.statusTopics.get(event.userId);
    if (subscribers === undefined) return;
    for (const subscription of subscribers) {
      if (event.origin === undefined || subscription.origin !== event.origin) {
        subscription.push(event);
      }
    }
  }

  /** Ends every subscription, for shutdown. */
  closeAll(): void {
    for (const set of [...this.activityTopics.values()]) for (const s of [...set]) s.close();
    for (const set of [...this.statusTopics.values()]) for (const s of [...set]) s.close();
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
    addTo(this.bus.statusTopics, userId, this);
  }

  protected override closed(): void {
    for (const userId of this.followed) removeFrom(this.bus.statusTopics, userId, this);
    this.followed.clear();
  }
}

function addTo<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  let set = map.get(key);
  if (set === undefined) {
    set = new Set();
    map.set(key, set);
  }
  set.add(value);
}

function removeFrom<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key);
  if (set === undefined) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}
