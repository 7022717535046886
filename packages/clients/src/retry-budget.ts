import { createSlidingWindow } from "./sliding-window.ts";

export interface RetryBudgetOptions {
  /**
   * Retries allowed per call, over the window: 0.2 lets retries add at most 20% to the calls
   * made, however many calls fail. Default 0.2.
   */
  ratio?: number;
  /**
   * Retries allowed per second on top of the ratio, so that a client making few calls can still
   * retry. Default 10.
   */
  minPerSecond?: number;
  /** The window calls and retries are counted over, in ms. Default 10000. */
  windowMs?: number;
  /** The clock, for tests. Default `Date.now`. */
  now?: () => number;
}

/** Limits retries to a share of recent calls, so that retries cannot multiply an outage. */
export interface RetryBudget {
  /** Counts a call (its first attempt). */
  onCall(): void;
  /** Takes one retry from the budget; false when it is spent, and the call must not retry. */
  tryRetry(): boolean;
  /** Retries the budget allows now. */
  available(): number;
}

const calls = 0;
const retries = 1;

/**
 * A retry budget as Finagle's `RetryBudget` and Linkerd's `retryBudget` define it: over the last
 * `windowMs`, retries may number `ratio` × calls + `minPerSecond` × the window in seconds. With
 * the defaults (Finagle's and Linkerd's), a client in a total outage sends at most 1.2 times its
 * calls plus 10 per second, whatever `maxAttempts` is.
 */
export function createRetryBudget(options: RetryBudgetOptions = {}): RetryBudget {
  const ratio = options.ratio ?? 0.2;
  const minPerSecond = options.minPerSecond ?? 10;
  const windowMs = options.windowMs ?? 10_000;
  if (!(ratio >= 0) || !(minPerSecond >= 0) || !(windowMs > 0)) {
    throw new RangeError("a retry budget needs ratio >= 0, minPerSecond >= 0 and windowMs > 0");
  }
  const window = createSlidingWindow({
    kinds: 2,
    windowMs,
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  const floor = (minPerSecond * windowMs) / 1000;
  const available = () => floor + ratio * window.sum(calls) - window.sum(retries);
  return {
    onCall() {
      window.add(calls);
    },
    tryRetry() {
      if (available() < 1) return false;
      window.add(retries);
      return true;
    },
    available: () => Math.max(0, Math.floor(available())),
  };
}
