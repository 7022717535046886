import type { Code } from "@connectrpc/connect";
import { Histogram } from "./histogram.ts";

/** Told how a call ended: its status code (0 OK, else a Code) and, on failure, the message. */
export type CallDone = (code: number, message: string) => void;

/**
 * Starts one call of the method under load; it calls `done` once, asynchronously, when the call
 * has ended. Callbacks rather than promises: the generator allocates nothing per call.
 */
export type Call = (done: CallDone) => void;

export interface LoadOptions {
  /**
   * The calls of each worker: `calls[i]` is what worker i makes, one at a time, so the number of
   * workers (calls in flight) is `calls.length`.
   */
  calls: readonly Call[];
  /** Stop after this many calls in all. */
  requests?: number;
  /** Stop starting calls after this many milliseconds; calls in flight still finish. */
  durationMs?: number;
}

/** How far a run is, updated while it runs (for a progress display). */
export interface LoadProgress {
  /** Calls finished, successfully or not. */
  completed: number;
  /** When the run started, in `performance.now()` milliseconds. */
  readonly startedAt: number;
}

export interface LoadResult {
  /** Latency of every finished call, in milliseconds, failures included. */
  latencies: Histogram;
  /** Finished calls by status: `byCode[code]` for each Code, 0 being OK. */
  byCode: Float64Array;
  /** The first message seen for each failing code. */
  firstErrors: Map<Code, string>;
  /** From the first call started to the last finished, in milliseconds. */
  elapsedMs: number;
}

/**
 * Runs `calls` as fast as the server answers: each worker starts its next call as soon as its
 * last one ended, until `requests` calls were started or `durationMs` passed. Latencies go into a
 * preallocated histogram, statuses into a typed array.
 */
export function runLoad(options: LoadOptions): {
  progress: LoadProgress;
  result: Promise<LoadResult>;
} {
  const latencies = new Histogram();
  // Codes go up to 16 (Unauthenticated); anything else counts as Unknown (2).
  const byCode = new Float64Array(17);
  const firstErrors = new Map<Code, string>();
  const progress = { completed: 0, startedAt: performance.now() };
  const total = options.requests ?? Number.POSITIVE_INFINITY;
  const deadline = progress.startedAt + (options.durationMs ?? Number.POSITIVE_INFINITY);
  let started = 0;
  let running = options.calls.length;

  return {
    progress,
    result: new Promise((resolve) => {
      const finished = () => {
        if (--running > 0) return;
        resolve({
          latencies,
          byCode,
          firstErrors,
          elapsedMs: performance.now() - progress.startedAt,
        });
      };
      if (running === 0) running = 1;
      for (const call of options.calls) {
        let t0 = 0;
        const next = () => {
          if (started >= total || performance.now() >= deadline) {
            finished();
            return;
          }
          started++;
          t0 = performance.now();
          call(done);
        };
        const done: CallDone = (code, message) => {
          latencies.record(performance.now() - t0);
          const c = code >= 0 && code < byCode.length ? code : 2;
          byCode[c] = (byCode[c] as number) + 1;
          if (c !== 0 && !firstErrors.has(c)) firstErrors.set(c, message);
          progress.completed++;
          next();
        };
        next();
      }
      if (options.calls.length === 0) finished();
    }),
  };
}
