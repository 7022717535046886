import { type LoadSample, type LoadSampler, noSample } from "../load-sampler.ts";

/**
 * A load sampler fed by hand, one interval per sample fed: what reads it decides without waiting
 * for a timer.
 */
export function handSampler(intervalMs = 100) {
  let listeners: ((sample: LoadSample) => void)[] = [];
  let latest = noSample;
  let sampledAt = performance.now();
  const sampler: LoadSampler = {
    get latest() {
      return latest;
    },
    get sampledAt() {
      return sampledAt;
    },
    intervalMs,
    onSample(listener) {
      listeners.push(listener);
      return () => {
        listeners = listeners.filter((l) => l !== listener);
      };
    },
    stop() {},
  };
  /**
   * Tells the listeners of `sample` (the latest with these fields changed), `times` times; taken
   * now, or with `at`, at `at` and each next one `intervalMs` later.
   */
  const feed = (sample: Partial<LoadSample>, times = 1, at?: number) => {
    for (let i = 0; i < times; i++) {
      latest = { ...latest, ...sample };
      sampledAt = at === undefined ? performance.now() : at + i * intervalMs;
      for (const listener of listeners) listener(latest);
    }
  };
  /** As if the loop had been busy without a break for `ms` since the last sample. */
  const stall = (ms: number) => {
    sampledAt = performance.now() - intervalMs - ms;
  };
  return { sampler, feed, stall };
}
