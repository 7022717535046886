import type { LoadSample, LoadSampler } from "./load-sampler.ts";

/** How close the process is to its memory limits. */
export type MemoryLevel = "ok" | "soft" | "hard";

/** A soft and a hard limit in bytes; 0 (or leaving one out) turns that limit off. */
export interface MemoryLimit {
  soft?: number;
  hard?: number;
}

/** Options for `createMemoryWatchdog`. */
export interface MemoryWatchdogOptions {
  /** The samples to watch (their `heapUsedBytes` and `rssBytes`). */
  sampler: LoadSampler;
  /** Limits of the V8 heap in use. Default: none. */
  heap?: MemoryLimit;
  /** Limits of the resident set size. Default: none. */
  rss?: MemoryLimit;
  /**
   * How long usage must stay below a limit before its level is left, in ms: the garbage
   * collector's saw-tooth must not flip the level with every collection. Default 2000.
   */
  recoverForMs?: number;
  /** Told of each change of level, with the sample that caused it. Default: nothing. */
  onChange?: (level: MemoryLevel, sample: LoadSample) => void;
}

/** The level the last samples put the process at. */
export interface MemoryWatchdog {
  readonly level: MemoryLevel;
}

const rank: Record<MemoryLevel, number> = { ok: 0, soft: 1, hard: 2 };

/**
 * Compares heap and RSS against soft and hard limits on each sample: a level is entered at once
 * (memory is not waited out) and left only once usage has stayed below it for `recoverForMs`.
 */
export function createMemoryWatchdog(options: MemoryWatchdogOptions): MemoryWatchdog {
  const recoverForMs = options.recoverForMs ?? 2000;
  const over = (value: number, limit: number | undefined) =>
    limit !== undefined && limit > 0 && value >= limit;
  const levelOf = (sample: LoadSample): MemoryLevel => {
    const { heap = {}, rss = {} } = options;
    if (over(sample.heapUsedBytes, heap.hard) || over(sample.rssBytes, rss.hard)) return "hard";
    if (over(sample.heapUsedBytes, heap.soft) || over(sample.rssBytes, rss.soft)) return "soft";
    return "ok";
  };
  let level: MemoryLevel = "ok";
  let belowForMs = 0;
  options.sampler.onSample((sample) => {
    const now = levelOf(sample);
    let next = level;
    if (rank[now] >= rank[level]) {
      belowForMs = 0;
      next = now;
    } else {
      belowForMs += options.sampler.intervalMs;
      if (belowForMs >= recoverForMs) {
        belowForMs = 0;
        next = now;
      }
    }
    if (next === level) return;
    level = next;
    options.onChange?.(level, sample);
  });
  return {
    get level() {
      return level;
    },
  };
}
