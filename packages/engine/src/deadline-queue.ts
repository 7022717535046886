import type { DefaultDeadline } from "./call.ts";

/** What a `DeadlineQueue` holds: a call's expiry and its place in the queue (the queue's to write). */
export interface Expiring {
  /** When it expires (`performance.now()`: a clock that never jumps). */
  readonly expiresAt: number;
  queuePrevious: Expiring | null;
  queueNext: Expiring | null;
  /** Ends it with `reason`: its deadline has passed. */
  expire(reason: unknown): void;
}

/**
 * The calls of one default deadline (one length, as a method's calls get it when their clients
 * set none), in the order they started, which is the order they expire in: one timer for all,
 * armed for the first, where a timer per call would be a `Timeout` and a closure per call, set and
 * cleared again by nearly every call long before it fires. Joining and leaving allocate nothing.
 */
export class DeadlineQueue {
  readonly ms: number;
  private readonly deadline: DefaultDeadline;
  private first: Expiring | null = null;
  private last: Expiring | null = null;
  private timer: NodeJS.Timeout | undefined;

  constructor(deadline: DefaultDeadline) {
    this.deadline = deadline;
    this.ms = deadline.ms;
  }

  /** Queues `item`, whose deadline is the latest yet (it started last). */
  add(item: Expiring): void {
    if (this.has(item)) return;
    item.queuePrevious = this.last;
    item.queueNext = null;
    const wasEmpty = this.last === null;
    if (wasEmpty) this.first = item;
    else (this.last as Expiring).queueNext = item;
    this.last = item;
    // A timer armed for an earlier call, which has left, fires early and re-arms (see `fire`).
    if (this.timer === undefined) this.arm(item.expiresAt);
    else if (wasEmpty) this.timer.ref();
  }

  /** Takes `item` out (it ended); nothing when it is not in. */
  delete(item: Expiring): void {
    if (!this.has(item)) return;
    const previous = item.queuePrevious;
    const next = item.queueNext;
    if (previous === null) this.first = next;
    else previous.queueNext = next;
    if (next === null) this.last = previous;
    else next.queuePrevious = previous;
    item.queuePrevious = null;
    item.queueNext = null;
    // The timer stays armed, so that a call after call does not set and clear one each (when it
    // fires it finds the first call still in, and re-arms); it keeps the process alive only while
    // a call waits.
    if (this.first === null) this.timer?.unref();
  }

  private arm(at: number): void {
    this.timer = setTimeout(this.fire, Math.max(1, Math.ceil(at - performance.now())));
  }

  private readonly fire = () => {
    this.timer = undefined;
    const now = performance.now();
    let item = this.first;
    while (item !== null && item.expiresAt <= now) {
      this.delete(item);
      item.expire(this.reason());
      item = this.first;
    }
    if (item !== null) this.arm(item.expiresAt);
  };

  /** Why a call expired: the deadline's error, or what making it threw (the others still expire). */
  private reason(): unknown {
    try {
      return this.deadline.error();
    } catch (err) {
      return err;
    }
  }

  /** Whether `item` is queued. */
  has(item: Expiring): boolean {
    return item.queuePrevious !== null || this.first === item;
  }
}
