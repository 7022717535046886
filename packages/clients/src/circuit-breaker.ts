import { Code } from "@connectrpc/connect";
import { createSlidingWindow } from "./sliding-window.ts";

export interface CircuitBreakerOptions {
  /** Share of failed calls, 0–1, that opens the circuit. Default 0.5. */
  failureRate?: number;
  /** Calls the window must hold before its failure rate counts. Default 20. */
  minimumRequests?: number;
  /** The window calls are counted over, in ms. Default 10000. */
  windowMs?: number;
  /** How long an open circuit refuses calls before it lets one probe through, in ms. Default 5000. */
  openMs?: number;
  /**
   * Codes that count as failures of the endpoint. Default UNAVAILABLE, DEADLINE_EXCEEDED,
   * INTERNAL, UNKNOWN and DATA_LOSS. Any other answer, an error such as NOT_FOUND included,
   * shows the endpoint works; CANCELED is not counted at all.
   */
  failureCodes?: Code[];
  /** The clock, for tests. Default `Date.now`. */
  now?: () => number;
}

/**
 * - closed: calls go through, and their outcomes are counted;
 * - open: calls are refused until `openMs` has passed;
 * - half_open: one probe call goes through; its success closes the circuit, its failure opens it.
 */
export type CircuitState = "closed" | "open" | "half_open";

/** Records a call's outcome: undefined for success, otherwise its error code. */
export type CircuitPermit = (code: Code | undefined) => void;

export interface CircuitBreaker {
  state(): CircuitState;
  /** Whether a call may go now (without taking the half-open probe). */
  allows(): boolean;
  /**
   * Lets a call go: returns the function to record its outcome with, exactly once, or undefined
   * when the circuit refuses it. In half_open, the first caller gets the probe.
   */
  acquire(): CircuitPermit | undefined;
}

const defaultFailureCodes = [
  Code.Unavailable,
  Code.DeadlineExceeded,
  Code.Internal,
  Code.Unknown,
  Code.DataLoss,
];

const total = 0;
const failed = 1;

/** A circuit breaker for one endpoint, counting failures over a sliding window. */
export function createCircuitBreaker(options: CircuitBreakerOptions = {}): CircuitBreaker {
  const failureRate = options.failureRate ?? 0.5;
  const minimumRequests = options.minimumRequests ?? 20;
  const windowMs = options.windowMs ?? 10_000;
  const openMs = options.openMs ?? 5000;
  if (!(failureRate > 0 && failureRate <= 1) || !(minimumRequests >= 1) || !(openMs >= 0)) {
    throw new RangeError(
      "a circuit breaker needs 0 < failureRate <= 1, minimumRequests >= 1 and openMs >= 0",
    );
  }
  const failures = new Set(options.failureCodes ?? defaultFailureCodes);
  const now = options.now ?? Date.now;
  const window = createSlidingWindow({ kinds: 2, windowMs, now });
  let state: CircuitState = "closed";
  let openedAt = 0;
  let probing = false;
  // Outcomes of calls let through before the state last changed are not counted.
  let generation = 0;

  const current = (): CircuitState => {
    if (state === "open" && now() - openedAt >= openMs) {
      state = "half_open";
      probing = false;
      generation++;
    }
    return state;
  };
  const open = () => {
    state = "open";
    openedAt = now();
    generation++;
  };
  const close = () => {
    state = "closed";
    window.clear();
    generation++;
  };

  const closedPermit = (g: number): CircuitPermit => {
    let done = false;
    return (code) => {
      if (done) return;
      done = true;
      if (g !== generation || code === Code.Canceled) return;
      window.add(total);
      if (code !== undefined && failures.has(code)) window.add(failed);
      const n = window.sum(total);
      if (n >= minimumRequests && window.sum(failed) >= failureRate * n) open();
    };
  };
  const probePermit = (g: number): CircuitPermit => {
    let done = false;
    return (code) => {
      if (done) return;
      done = true;
      if (g !== generation) return;
      probing = false;
      if (code === Code.Canceled) return; // no verdict: the next call probes
      if (code !== undefined && failures.has(code)) open();
      else close();
    };
  };

  return {
    state: current,
    allows() {
      const s = current();
      return s === "closed" || (s === "half_open" && !probing);
    },
    acquire() {
      const s = current();
      if (s === "closed") return closedPermit(generation);
      if (s === "half_open" && !probing) {
        probing = true;
        return probePermit(generation);
      }
      return undefined;
    },
  };
}
