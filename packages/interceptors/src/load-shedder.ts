import type { ConnectError, Interceptor } from "@connectrpc/connect";
import type { LoadSample, LoadSampler } from "./load-sampler.ts";
import type { MemoryWatchdog } from "./memory-watchdog.ts";
import { resourceExhausted } from "./resource-exhausted.ts";

/** Why calls are being shed: the signal furthest over its threshold. */
export type ShedReason = "event_loop_delay" | "event_loop_utilization" | "memory";

/** Every reason, for counters that should exist at zero from the start. */
export const shedReasons: readonly ShedReason[] = [
  "event_loop_delay",
  "event_loop_utilization",
  "memory",
];

/** Whether the shedder refuses calls now, why, and what share of them. */
export interface ShedState {
  shedding: boolean;
  /** Set while shedding. */
  reason: ShedReason | undefined;
  /** The share of new calls refused, 0 to 1. */
  probability: number;
}

/** Options for `createLoadShedder`. */
export interface LoadShedderOptions {
  /** The samples decisions are made from, once per sample (never per call). */
  sampler: LoadSampler;
  /** Overloaded when the mean event-loop delay exceeds this, in ms; 0 turns it off. Default 50. */
  eventLoopDelayMs?: number;
  /**
   * Overloaded when event-loop utilization (the share of time the main thread is busy, from
   * `performance.eventLoopUtilization`) exceeds this, 0 to 1; 0 turns it off. Default 0.9.
   */
  eventLoopUtilization?: number;
  /** Calls are shed only once overload has lasted this long, in ms. Default 500. */
  overloadForMs?: number;
  /** Shedding stops once the load has stayed below every threshold this long, in ms. Default 2000. */
  recoverForMs?: number;
  /** The delay refused callers are told to wait (RetryInfo and `retry-after`), in ms. Default 1000. */
  retryAfterMs?: number;
  /** Above its soft limit, every call but the exempt ones is refused. Default: no memory limits. */
  memory?: MemoryWatchdog;
  /** Services never shed, by full name. Default: `["grpc.health.v1.Health"]`. */
  exempt?: readonly string[];
  /** Told of each refused call. Default: nothing. */
  onShed?: (reason: ShedReason) => void;
  /** Told when shedding starts, stops or changes reason (not of each change of share). */
  onChange?: (state: ShedState, sample: LoadSample) => void;
  /** Random numbers in [0, 1), for tests. Default `Math.random`. */
  random?: () => number;
}

/** The shedding decision, made on samples, applied to calls. */
export interface LoadShedder {
  /**
   * The refusal of a call of `service` (its full name, as `"user.v1.UserService"`) when it is to
   * be shed: RESOURCE_EXHAUSTED with a retry delay; undefined, at once, otherwise. For the engine's
   * `admit`, before any work on the call.
   */
  check(service: string): ConnectError | undefined;
  /** An interceptor throwing `check`'s refusal first, for a server without `admit`. */
  readonly interceptor: Interceptor;
  readonly state: ShedState;
}

/**
 * How fast the share of refused calls follows the overload, per second: a signal at twice its
 * threshold raises the share by 1 in a second; one at half its threshold lowers it by 0.5.
 */
const gainPerSecond = 1;

/**
 * Sheds new calls while the process is overloaded, as go-zero's adaptive shedder and kratos' BBR
 * do, for Node.js: the signals are event-loop delay and utilization (the main thread is the
 * bottleneck, not the cores), sampled on a timer; and, per call, whether the loop has gone
 * without a break since the last sample for longer than the delay threshold (while shedding) or
 * `overloadForMs` (otherwise), which the timer cannot report until the stretch is over. Overload must last `overloadForMs` before
 * shedding starts; then the share of calls refused is adjusted every sample in proportion to how
 * far the worse signal is from its threshold (an integral controller), so that just enough calls
 * are admitted to keep the process at its thresholds instead of flipping between all and none.
 * Shedding stops once every signal has stayed below its threshold for `recoverForMs`. Above a
 * memory soft limit every call is refused (memory is not a rate to steer; new calls are what
 * allocate). Refused calls get RESOURCE_EXHAUSTED with a RetryInfo detail and `retry-after`: keel's
 * clients wait that long before retrying, where UNAVAILABLE would be retried at once.
 */
export function createLoadShedder(options: LoadShedderOptions): LoadShedder {
  const delayLimit = options.eventLoopDelayMs ?? 50;
  const utilizationLimit = options.eventLoopUtilization ?? 0.9;
  const overloadForMs = options.overloadForMs ?? 500;
  const recoverForMs = options.recoverForMs ?? 2000;
  const retryAfterMs = options.retryAfterMs ?? 1000;
  const exempt = new Set(options.exempt ?? ["grpc.health.v1.Health"]);
  const random = options.random ?? Math.random;
  const intervalMs = options.sampler.intervalMs;
  const gain = (gainPerSecond * intervalMs) / 1000;
  let state: ShedState = { shedding: false, reason: undefined, probability: 0 };
  let overForMs = 0;
  let underForMs = 0;
  options.sampler.onSample((sample) => {
    const before = state;
    if (options.memory !== undefined && options.memory.level !== "ok") {
      state = { shedding: true, reason: "memory", probability: 1 };
    } else {
      const delay = delayLimit > 0 ? sample.eventLoopDelayMs / delayLimit : 0;
      const busy = utilizationLimit > 0 ? sample.eventLoopUtilization / utilizationLimit : 0;
      const load = Math.max(delay, busy);
      const reason: ShedReason = delay >= busy ? "event_loop_delay" : "event_loop_utilization";
      if (load > 1) {
        overForMs += intervalMs;
        underForMs = 0;
      } else {
        underForMs += intervalMs;
        overForMs = 0;
      }
      // Leaving memory shedding: start again from the signals, not from refusing everything.
      const previous = before.reason === "memory" ? idle : before;
      let { shedding, probability } = previous;
      if (!shedding && overForMs >= overloadForMs) shedding = true;
      if (shedding) probability = Math.min(1, Math.max(0, probability + gain * (load - 1)));
      if (shedding && underForMs >= recoverForMs) {
        shedding = false;
        probability = 0;
      }
      state = {
        shedding,
        // Below every threshold, the reason stays the one that started it.
        reason: shedding ? (load > 1 ? reason : (previous.reason ?? reason)) : undefined,
        probability,
      };
    }
    if (state.shedding !== before.shedding || state.reason !== before.reason) {
      options.onChange?.(state, sample);
    }
  });

  const { sampler } = options;
  const check = (service: string) => {
    let { probability, reason } = state;
    if (delayLimit > 0 && probability < 1) {
      // The loop has run without a break since the last sample: calls parsed in one long batch
      // (Node reads a socket's whole backlog at once) have waited all that time, and the timer
      // cannot say so until the batch is done. Past the delay threshold while shedding, or past
      // `overloadForMs` at all, they are refused: that drains the backlog at the cost of a
      // refusal each. One clock read per call.
      const late = performance.now() - sampler.sampledAt - intervalMs;
      if (late > (state.shedding ? delayLimit : Math.max(delayLimit, overloadForMs))) {
        probability = 1;
        reason = "event_loop_delay";
      }
    }
    if (probability === 0 || reason === undefined || exempt.has(service)) return undefined;
    if (probability < 1 && random() >= probability) return undefined;
    options.onShed?.(reason);
    return refusalOf(reason);
  };
  // One error per reason, made once: under overload a refusal must cost next to nothing, and
  // making an error (its stack, its RetryInfo detail) was the dearest part of one. Nothing that
  // answers a call changes the error it answers with.
  const refusals = new Map<ShedReason, ConnectError>();
  const refusalOf = (reason: ShedReason) => {
    let refusal = refusals.get(reason);
    if (refusal === undefined) {
      refusal = resourceExhausted(
        `the server is overloaded (${reasonText[reason]}) and refused the call before doing any work: retry after ${retryAfterMs} ms, or on another instance`,
        retryAfterMs,
      );
      refusals.set(reason, refusal);
    }
    return refusal;
  };
  return {
    check,
    interceptor: (next) => (req) => {
      const refusal = check(req.service.typeName);
      if (refusal !== undefined) throw refusal;
      return next(req);
    },
    get state() {
      return state;
    },
  };
}

const idle: ShedState = { shedding: false, reason: undefined, probability: 0 };

const reasonText: Record<ShedReason, string> = {
  event_loop_delay: "event-loop delay",
  event_loop_utilization: "event-loop utilization",
  memory: "memory above its limit",
};
