import type { HistogramData } from "./histogram.ts";
import { type LoadProgress, runLoad } from "./load-generator.ts";
import { createPerfCalls, type PerfCallsOptions } from "./perf-calls.ts";

/** A share of a perf run, for one thread: its workers, its connections, its part of the calls. */
export interface ShardOptions extends Omit<PerfCallsOptions, "counters"> {
  /** This shard's calls, when the run is limited by a number of calls. */
  requests?: number;
  durationMs?: number;
}

/** What a shard measured, as plain data (it may come from another thread). */
export interface ShardResult {
  latencies: HistogramData;
  byCode: Float64Array;
  firstErrors: [number, string][];
  messages: number;
}

export interface Shard {
  /** Makes one untimed call per connection: connected and warmed up before the clock starts. */
  warmUp(): Promise<void>;
  /** Measures; then closes the connections. */
  run(): { progress: LoadProgress; result: Promise<ShardResult> };
}

export function createShard(options: ShardOptions): Shard {
  const counters = { messages: 0 };
  const { calls, close } = createPerfCalls({ ...options, counters });
  return {
    async warmUp() {
      // Worker i uses connection i mod connections: the first workers cover every connection.
      // Their failures show again in the measured calls.
      await Promise.all(
        calls
          .slice(0, options.connections)
          .map((call) => new Promise<void>((resolve) => call(() => resolve()))),
      );
      counters.messages = 0;
    },
    run() {
      const { progress, result } = runLoad({
        calls,
        ...(options.requests === undefined ? {} : { requests: options.requests }),
        ...(options.durationMs === undefined ? {} : { durationMs: options.durationMs }),
      });
      return {
        progress,
        result: result.then((measured) => {
          close();
          return {
            latencies: measured.latencies.toData(),
            byCode: measured.byCode,
            firstErrors: [...measured.firstErrors],
            messages: counters.messages,
          };
        }),
      };
    },
  };
}

/**
 * Splits a run over `threads` shards: connection c goes to shard c mod threads, and each worker
 * to its connection's shard; calls are shared out like the workers.
 */
export function splitShards(options: ShardOptions, threads: number): ShardOptions[] {
  const shards: ShardOptions[] = [];
  let requestsLeft = options.requests;
  for (let t = 0; t < threads; t++) {
    let connections = 0;
    for (let c = t; c < options.connections; c += threads) connections++;
    let concurrency = 0;
    for (let w = 0; w < options.concurrency; w++)
      if ((w % options.connections) % threads === t) concurrency++;
    const shard: ShardOptions = { ...options, connections, concurrency };
    if (requestsLeft !== undefined && options.requests !== undefined) {
      const share =
        t === threads - 1
          ? requestsLeft
          : Math.round((options.requests * concurrency) / options.concurrency);
      shard.requests = Math.min(share, requestsLeft);
      requestsLeft -= shard.requests;
    }
    shards.push(shard);
  }
  return shards;
}
