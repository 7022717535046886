/** Counts of a few kinds of events over the last `windowMs`, for budgets and circuit breakers. */
export interface SlidingWindow {
  /** Counts `n` events of kind `kind` (an index below `kinds`) now. */
  add(kind: number, n?: number): void;
  /** Events of kind `kind` in the window that ends now. */
  sum(kind: number): number;
  /** Forgets everything counted so far. */
  clear(): void;
}

export interface SlidingWindowOptions {
  /** How many kinds of events are counted. */
  kinds: number;
  /** The window's length in ms. */
  windowMs: number;
  /**
   * The window moves in steps of `windowMs / buckets`: events leave it up to one step late.
   * Default 10.
   */
  buckets?: number;
  /** The clock. Default `Date.now`. */
  now?: () => number;
}

/**
 * A window that slides in fixed steps, like Finagle's `WindowedAdder`: memory and time per
 * event do not grow with the traffic.
 */
export function createSlidingWindow(options: SlidingWindowOptions): SlidingWindow {
  const { kinds, windowMs } = options;
  const buckets = options.buckets ?? 10;
  if (!(windowMs > 0) || !(buckets >= 1)) {
    throw new RangeError(`a sliding window needs windowMs > 0 and buckets >= 1, got ${windowMs}`);
  }
  const now = options.now ?? Date.now;
  const stepMs = windowMs / buckets;
  // counts[b * kinds + k]: events of kind k in bucket b; bucket b covers step number steps[b].
  const counts = new Float64Array(buckets * kinds);
  const steps = new Float64Array(buckets).fill(Number.NEGATIVE_INFINITY);

  /** The index of the bucket for the current step, emptied if it last held an older step. */
  const current = (): number => {
    const step = Math.floor(now() / stepMs);
    const b = ((step % buckets) + buckets) % buckets;
    if (steps[b] !== step) {
      steps[b] = step;
      counts.fill(0, b * kinds, (b + 1) * kinds);
    }
    return b;
  };

  return {
    add(kind, n = 1) {
      const i = current() * kinds + kind;
      counts[i] = (counts[i] as number) + n;
    },
    sum(kind) {
      const oldest = Math.floor(now() / stepMs) - buckets + 1;
      let total = 0;
      for (let b = 0; b < buckets; b++) {
        if ((steps[b] as number) >= oldest) total += counts[b * kinds + kind] as number;
      }
      return total;
    },
    clear() {
      counts.fill(0);
      steps.fill(Number.NEGATIVE_INFINITY);
    },
  };
}
