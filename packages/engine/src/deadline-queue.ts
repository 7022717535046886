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
 * Calls in the order they expire, under one timer armed for the first, where a timer per call
 * would be a `Timeout` and a closure per call, set and cleared again by nearly every call long
 * before it fires. Joining and leaving allocate nothing.
 *
 * A call joins from the back, stepping over the calls that expire after it: none for the calls of
 * one default deadline (one length: they expire in the order they start), a few for clients'
 * deadlines of similar lengths. A call that would step over more than `maxSteps` (a short deadline
 * among many long ones) is not taken, and gets a timer of its own: joining never costs more than
 * a few steps, whatever deadlines clients send.
 */
export class DeadlineQueue {
  /** The deadline's length in ms, when all its calls share one (a method's default); else 0. */
  readonly ms: number;
  private readonly error: () => unknown;
  private readonly maxSteps: number;
  private first: Expiring | null = null;
  private last: Expiring | null = null;
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires (`performance.now()`); meaningful while `timer` is set. */
  private timerAt = 0;

  /**
   * @param error why a call expired, made as it expires.
   * @param ms the length every call's deadline has, if they share one.
   * @param maxSteps how many later calls a joining one may step over (see above).
   */
  constructor(error: () => unknown, ms = 0, maxSteps = 16) {
    this.error = error;
    this.ms = ms;
    this.maxSteps = maxSteps;
  }

  /** Queues `item` in the order of expiry; false when it is too far from the back (see above). */
  add(item: Expiring): boolean {
    if (this.has(item)) return true;
    let previous = this.last;
    for (let steps = 0; previous !== null && previous.expiresAt > item.expiresAt; steps++) {
      if (steps === this.maxSteps) return false;
      previous = previous.queuePrevious;
    }
    const next = previous === null ? this.first : previous.queueNext;
    const wasEmpty = this.first === null;
    item.queuePrevious = previous;
    item.queueNext = next;
    if (previous === null) this.first = item;
    else previous.queueNext = item;
    if (next === null) this.last = item;
    else next.queuePrevious = item;
    if (this.timer === undefined) {
      this.arm(item.expiresAt);
    } else if (previous === null && item.expiresAt < this.timerAt) {
      // The first now, sooner than the timer: armed again for it.
      clearTimeout(this.timer);
      this.arm(item.expiresAt);
    } else if (wasEmpty) {
      this.timer.ref();
    }
    return true;
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

  /** Whether `item` is queued. */
  has(item: Expiring): boolean {
    return item.queuePrevious !== null || this.first === item;
  }

  private arm(at: number): void {
    this.timerAt = at;
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
    if (item !== null && this.timer === undefined) this.arm(item.expiresAt);
  };

  /** Why a call expired: the deadline's error, or what making it threw (the others still expire). */
  private reason(): unknown {
    try {
      return this.error();
    } catch (err) {
      return err;
    }
  }
}
