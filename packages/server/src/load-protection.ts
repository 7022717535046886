import {
  createLoadSampler,
  createLoadShedder,
  createMemoryWatchdog,
  type LoadSampler,
  type LoadShedder,
  type MemoryLimit,
  type ShedReason,
} from "@keel/interceptors";
import type { Logger } from "pino";
import type { HealthConditions } from "./health-conditions.ts";

/** Load shedding: when, and what refused callers are told. */
export interface LoadSheddingOptions {
  /** Overloaded above this mean event-loop delay, in ms; 0: not watched. Default 50. */
  eventLoopDelayMs?: number;
  /** Overloaded above this event-loop utilization, 0 to 1; 0: not watched. Default 0.9. */
  eventLoopUtilization?: number;
  /** How long overload lasts before calls are shed, in ms. Default 500. */
  overloadForMs?: number;
  /** How long the load stays below the thresholds before shedding stops, in ms. Default 2000. */
  recoverForMs?: number;
  /** The retry delay refused callers are given, in ms. Default 1000. */
  retryAfterMs?: number;
  /** Report NOT_SERVING on grpc.health.v1 (and /readyz) while shedding. Default false. */
  healthNotServing?: boolean;
}

/** Options for `createLoadProtection`. */
export interface LoadProtectionOptions {
  /** Shed calls when overloaded; undefined: never for load (memory limits still shed). */
  shedding?: LoadSheddingOptions;
  /** Heap and RSS limits: above a soft one calls are shed, above a hard one health is NOT_SERVING. */
  memory?: { heap?: MemoryLimit; rss?: MemoryLimit };
  /** How often the process is sampled, in ms. Default 100. */
  sampleIntervalMs?: number;
  /** Told of each refused call, by reason (a counter). */
  onShed: (reason: ShedReason) => void;
  health: HealthConditions;
  logger: Logger;
}

/** The shedder the request gate and the adapter's first interceptor ask, and its timer's stop. */
export interface LoadProtection {
  shedder: LoadShedder;
  /** The process's sampler, which the load report reads too (one timer, one delay monitor). */
  sampler: LoadSampler;
  stop(): void;
}

const mib = (bytes: number) => Math.round(bytes / 1024 / 1024);

/**
 * Load shedding and the memory watchdog of one server process, on one sampler: each start and end of shedding and each change of
 * memory level is logged once, and health turns NOT_SERVING above a hard memory limit (and while
 * shedding, with `healthNotServing`). Undefined when neither is configured: nothing is sampled.
 */
export function createLoadProtection(options: LoadProtectionOptions): LoadProtection | undefined {
  const { shedding, memory, logger, health } = options;
  const limited = (limit: MemoryLimit | undefined) =>
    (limit?.soft ?? 0) > 0 || (limit?.hard ?? 0) > 0;
  const watchMemory = limited(memory?.heap) || limited(memory?.rss);
  if (shedding === undefined && !watchMemory) return undefined;
  const sampler = createLoadSampler(
    options.sampleIntervalMs === undefined ? {} : { intervalMs: options.sampleIntervalMs },
  );
  const watchdog = !watchMemory
    ? undefined
    : createMemoryWatchdog({
        sampler,
        ...(memory?.heap === undefined ? {} : { heap: memory.heap }),
        ...(memory?.rss === undefined ? {} : { rss: memory.rss }),
        onChange(level, sample) {
          const usage = { heapUsedMiB: mib(sample.heapUsedBytes), rssMiB: mib(sample.rssBytes) };
          if (level === "ok") logger.info(usage, "memory back below its limits");
          else if (level === "soft") {
            logger.warn(usage, "memory above its soft limit: shedding new calls");
          } else
            logger.error(usage, "memory above its hard limit: not serving, shedding new calls");
          health.set("memory", level !== "hard");
        },
      });
  // Without load thresholds, only memory decides: the load signals are turned off.
  const thresholds = shedding ?? { eventLoopDelayMs: 0, eventLoopUtilization: 0 };
  let loggedOverload = false;
  const shedder = createLoadShedder({
    sampler,
    ...definedOnly({
      eventLoopDelayMs: thresholds.eventLoopDelayMs,
      eventLoopUtilization: thresholds.eventLoopUtilization,
      overloadForMs: thresholds.overloadForMs,
      recoverForMs: thresholds.recoverForMs,
      retryAfterMs: thresholds.retryAfterMs,
      memory: watchdog,
    }),
    onShed: options.onShed,
    onChange(state, sample) {
      const signals = {
        eventLoopDelayMs: Math.round(sample.eventLoopDelayMs * 10) / 10,
        eventLoopUtilization: Math.round(sample.eventLoopUtilization * 100) / 100,
      };
      // Memory's changes are the watchdog's to log.
      const overloaded = state.shedding && state.reason !== "memory";
      // Once when shedding starts (not again when the worse signal changes), once when it stops.
      if (overloaded && !loggedOverload) {
        logger.warn({ reason: state.reason, ...signals }, "overloaded: shedding new calls");
      } else if (!overloaded && loggedOverload) {
        logger.info(signals, "load back below the thresholds: stopped shedding");
      }
      loggedOverload = overloaded;
      if (shedding?.healthNotServing === true) {
        health.set("load", !state.shedding || state.reason === "memory");
      }
    },
  });
  return { shedder, sampler, stop: () => sampler.stop() };
}

/** The entries whose value is defined (the options are `exactOptionalPropertyTypes`). */
function definedOnly<T extends Record<string, unknown>>(
  values: T,
): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as never;
}
