import { type Linked, LinkedList } from "./linked-list.ts";

/** Something read over time that can stall: a request body. */
export interface Watched extends Linked {
  /** When it last made progress (`performance.now()`). */
  readonly lastActivity: number;
  /** Called once when it has made no progress for `ms`. */
  stall(ms: number): void;
}

/**
 * Finds request bodies that stalled, with one timer for all of them instead of one per call (a
 * timer per call was a measurable share of a unary call's allocations). A body is failed between
 * `timeoutMs` and a quarter more after its last byte; a watch whose bodies are all done stops its
 * timer at the next tick. The bodies are linked through themselves (see `LinkedList`).
 */
export class IdleWatch {
  readonly timeoutMs: number;
  private readonly watched = new LinkedList<Watched>();
  private timer: NodeJS.Timeout | undefined;

  /** @param timeoutMs how long a body may go without a byte; 0 watches nothing. */
  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  /** How many are watched, for tests and metrics. */
  get size(): number {
    return this.watched.size;
  }

  watch(item: Watched): void {
    if (this.timeoutMs <= 0) return;
    this.watched.add(item);
    if (this.timer === undefined) {
      this.timer = setInterval(this.sweep, Math.max(5, Math.min(1000, this.timeoutMs / 4)));
      this.timer.unref();
    }
  }

  unwatch(item: Watched): void {
    this.watched.delete(item);
  }

  private readonly sweep = () => {
    if (this.watched.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    const now = performance.now();
    this.watched.forEach((item) => {
      if (now - item.lastActivity < this.timeoutMs) return;
      this.watched.delete(item);
      item.stall(this.timeoutMs);
    });
  };
}
