/** Something read over time that can stall: a request body. */
export interface Watched {
  /** When it last made progress (`performance.now()`). */
  readonly lastActivity: number;
  /** Called once when it has made no progress for `ms`. */
  stall(ms: number): void;
  /** Its neighbours in the watch's list: null when not watched (written by `IdleWatch` only). */
  idlePrevious: Watched | null;
  idleNext: Watched | null;
}

/**
 * Finds request bodies that stalled, with one timer for all of them instead of one per call (a
 * timer per call was a measurable share of a unary call's allocations). A body is failed between
 * `timeoutMs` and a quarter more after its last byte; a watch whose bodies are all done stops its
 * timer at the next tick. The bodies are linked through themselves, not held in a `Set`: a long-
 * lived set that every call enters and leaves reallocates its table as it grows and shrinks, and
 * what it allocates lives as long as the set.
 */
export class IdleWatch {
  readonly timeoutMs: number;
  private first: Watched | null = null;
  private count = 0;
  private timer: NodeJS.Timeout | undefined;

  /** @param timeoutMs how long a body may go without a byte; 0 watches nothing. */
  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  /** How many are watched, for tests and metrics. */
  get size(): number {
    return this.count;
  }

  watch(item: Watched): void {
    if (this.timeoutMs <= 0 || this.has(item)) return;
    item.idlePrevious = null;
    item.idleNext = this.first;
    if (this.first !== null) this.first.idlePrevious = item;
    this.first = item;
    this.count++;
    if (this.timer === undefined) {
      this.timer = setInterval(this.sweep, Math.max(5, Math.min(1000, this.timeoutMs / 4)));
      this.timer.unref();
    }
  }

  unwatch(item: Watched): void {
    if (!this.has(item)) return;
    const { idlePrevious: previous, idleNext: next } = item;
    if (previous === null) this.first = next;
    else previous.idleNext = next;
    if (next !== null) next.idlePrevious = previous;
    item.idlePrevious = null;
    item.idleNext = null;
    this.count--;
  }

  private has(item: Watched): boolean {
    return item.idlePrevious !== null || this.first === item;
  }

  private readonly sweep = () => {
    if (this.count === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    const now = performance.now();
    let item = this.first;
    while (item !== null) {
      const next = item.idleNext;
      if (now - item.lastActivity >= this.timeoutMs) {
        this.unwatch(item);
        item.stall(this.timeoutMs);
      }
      item = next;
    }
  };
}
