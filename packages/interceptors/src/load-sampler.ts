import { monitorEventLoopDelay } from "node:perf_hooks";

/** What the process looked like over one sampling interval. */
export interface LoadSample {
  /**
   * Mean event-loop delay over the interval, in ms: how late a timer ran, on average (at least
   * how late the sampler's own timer ran).
   */
  eventLoopDelayMs: number;
  /**
   * The 99th percentile of the event-loop delays recorded over the interval, in ms (at least how
   * late the sampler's own timer ran).
   */
  eventLoopDelayP99Ms: number;
  /**
   * The share of the interval the event loop was busy rather than waiting for I/O, 0 to 1
   * (`performance.eventLoopUtilization`): the main thread's own load, which other threads (the
   * garbage collector's helpers, the thread pool hashing passwords) do not add to.
   */
  eventLoopUtilization: number;
  /** CPU time the process used over the interval (every thread), per wall-clock time: 1 is one core. */
  cpuUtilization: number;
  /** V8 heap in use at the end of the interval, in bytes. */
  heapUsedBytes: number;
  /** Resident set size at the end of the interval, in bytes. */
  rssBytes: number;
}

/** The sample before the first interval has passed: all zeros. */
export const noSample: LoadSample = Object.freeze({
  eventLoopDelayMs: 0,
  eventLoopDelayP99Ms: 0,
  eventLoopUtilization: 0,
  cpuUtilization: 0,
  heapUsedBytes: 0,
  rssBytes: 0,
});

/** Options for `createLoadSampler`. */
export interface LoadSamplerOptions {
  /** How often the process is sampled, in ms. Default 100. */
  intervalMs?: number;
}

/** Samples the process on a timer; every listener is told of each sample. */
export interface LoadSampler {
  /** The latest sample (zeros until the first interval has passed). */
  readonly latest: LoadSample;
  /** The sampling interval, in ms. */
  readonly intervalMs: number;
  /**
   * When the latest sample was taken (`performance.now()`): a loop busy without a break for
   * longer than the interval leaves this behind, which a call can see before the next sample.
   */
  readonly sampledAt: number;
  /**
   * Calls `listener` with each new sample, in the order listeners were added; returns what
   * removes it again.
   */
  onSample(listener: (sample: LoadSample) => void): () => void;
  /** Stops the timer and the event-loop delay monitor. */
  stop(): void;
}

/**
 * Samples event-loop delay (`perf_hooks.monitorEventLoopDelay`, 10 ms resolution), event-loop
 * utilization, CPU use
 * (`process.cpuUsage`) and memory (`process.memoryUsage`) every `intervalMs`, on an unref'd timer:
 * calls pay nothing, whatever reads the samples reads numbers already there.
 */
export function createLoadSampler(options: LoadSamplerOptions = {}): LoadSampler {
  const intervalMs = options.intervalMs ?? 100;
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let listeners: ((sample: LoadSample) => void)[] = [];
  let latest = noSample;
  let cpu = process.cpuUsage();
  let at = performance.now();
  let sampledAt = at;
  let elu = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.now();
    const used = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    const busy = performance.eventLoopUtilization(elu);
    elu = performance.eventLoopUtilization();
    const memory = process.memoryUsage();
    // This timer's own lateness counts too: after a long block it may run before the monitor's
    // timer has recorded anything (an empty histogram's mean is NaN).
    const late = Math.max(0, now - at - intervalMs);
    const recorded = delay.count > 0;
    const mean = Math.max(recorded ? delay.mean / 1e6 : 0, late);
    const p99 = Math.max(recorded ? delay.percentile(99) / 1e6 : 0, late);
    delay.reset();
    latest = {
      eventLoopDelayMs: mean,
      eventLoopDelayP99Ms: p99,
      eventLoopUtilization: busy.utilization,
      cpuUtilization: (used.user + used.system) / 1000 / Math.max(1, now - at),
      heapUsedBytes: memory.heapUsed,
      rssBytes: memory.rss,
    };
    at = now;
    sampledAt = now;
    for (const listener of listeners) listener(latest);
  }, intervalMs);
  timer.unref();
  return {
    get latest() {
      return latest;
    },
    intervalMs,
    get sampledAt() {
      return sampledAt;
    },
    onSample(listener) {
      listeners.push(listener);
      // A new array, so that a listener removed while the listeners are told misses no other.
      return () => {
        listeners = listeners.filter((l) => l !== listener);
      };
    },
    stop() {
      clearInterval(timer);
      delay.disable();
    },
  };
}
