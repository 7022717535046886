import { Code, ConnectError } from "@connectrpc/connect";
import { resourceExhausted } from "@keel/interceptors";

export interface FairQueueOptions {
  /** What the queue runs, for messages: "password hashing". */
  name: string;
  /** Tasks running at once. At least 1. */
  concurrency: number;
  /** Tasks waiting, over all callers; a task past it is refused. At least 1. */
  maxQueued: number;
  /** Tasks one caller may have waiting or running; a task past it is refused. At least 1. */
  perCaller: number;
}

/** Counts, for metrics and tests. */
export interface FairQueueStats {
  running: number;
  queued: number;
  /** Callers with a task waiting or running. */
  callers: number;
  /** Tasks refused since the start, because the queue or the caller's share was full. */
  refused: number;
}

export interface FairQueue {
  /**
   * Runs `task` when its turn comes. Callers take turns: the waiting caller that has started the
   * fewest tasks goes next, so a caller with many tasks delays a newcomer by at most the tasks
   * already running. Refused at once with RESOURCE_EXHAUSTED and a retry delay when `caller` already has
   * `perCaller` tasks or the queue is full; a task whose `signal` aborts while it waits leaves
   * the queue, rejected with the signal's reason.
   */
  run<T>(caller: string, task: () => Promise<T>, signal?: AbortSignal): Promise<T>;
  stats(): FairQueueStats;
}

interface Waiting {
  start: () => void;
  cancel: (reason: unknown) => void;
}

/**
 * A bounded queue for expensive work shared between untrusted callers, fair between callers:
 * what one caller sends cannot fill it, and cannot make another caller's task wait behind all of
 * its own.
 */
export function createFairQueue(options: FairQueueOptions): FairQueue {
  const { name, concurrency, maxQueued, perCaller } = options;
  for (const [key, value] of Object.entries({ concurrency, maxQueued, perCaller })) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(`${name}: ${key} must be a positive integer, got ${value}`);
    }
  }
  // Callers with waiting tasks, in the order they began to wait.
  const waiting = new Map<string, Waiting[]>();
  const held = new Map<string, number>();
  let running = 0;
  let queued = 0;
  let refused = 0;
  // How long a task takes, averaged, to tell a refused caller when to come back.
  let averageMs = 0;

  const release = (caller: string) => {
    const n = (held.get(caller) ?? 1) - 1;
    if (n > 0) {
      held.set(caller, n);
      return;
    }
    held.delete(caller);
    started.delete(caller);
  };

  // Tasks started per caller in its current stay (until it holds nothing): the waiting caller
  // with the fewest goes next, the longest waiting of those first, so that a newcomer goes ahead
  // of a caller that has had its turn already, however many tasks that one has queued.
  const started = new Map<string, number>();
  const pump = () => {
    while (running < concurrency) {
      let caller: string | undefined;
      let fewest = Number.POSITIVE_INFINITY;
      for (const candidate of waiting.keys()) {
        const n = started.get(candidate) ?? 0;
        if (n < fewest) {
          fewest = n;
          caller = candidate;
        }
      }
      if (caller === undefined) return;
      const tasks = waiting.get(caller) as Waiting[];
      const task = tasks.shift() as Waiting;
      if (tasks.length === 0) waiting.delete(caller);
      started.set(caller, fewest + 1);
      queued--;
      task.start();
    }
  };

  const refuse = (why: string): ConnectError => {
    refused++;
    const waitMs = Math.max(1000, averageMs * Math.ceil((queued + running) / concurrency));
    return resourceExhausted(`${name} is busy: ${why}`, waitMs);
  };

  return {
    run(caller, task, signal) {
      const mine = held.get(caller) ?? 0;
      if (mine >= perCaller) {
        return Promise.reject(
          refuse(`this client already has ${mine} requests waiting; wait for them to finish`),
        );
      }
      if (queued >= maxQueued && running >= concurrency) {
        return Promise.reject(refuse(`${queued} requests are waiting`));
      }
      if (signal?.aborted) return Promise.reject(signal.reason);
      held.set(caller, mine + 1);
      return new Promise((resolve, reject) => {
        const onAbort = () => waiter.cancel(signal?.reason);
        const waiter: Waiting = {
          start() {
            signal?.removeEventListener("abort", onAbort);
            running++;
            const startedAt = performance.now();
            task()
              .then(resolve, reject)
              .finally(() => {
                const ms = performance.now() - startedAt;
                averageMs = averageMs === 0 ? ms : averageMs * 0.9 + ms * 0.1;
                running--;
                release(caller);
                pump();
              });
          },
          cancel(reason) {
            const tasks = waiting.get(caller);
            const at = tasks?.indexOf(waiter) ?? -1;
            if (tasks === undefined || at < 0) return;
            tasks.splice(at, 1);
            if (tasks.length === 0) waiting.delete(caller);
            queued--;
            release(caller);
            reject(
              reason instanceof Error
                ? reason
                : new ConnectError(`${name}: the call was cancelled`, Code.Canceled),
            );
          },
        };
        const tasks = waiting.get(caller);
        if (tasks === undefined) waiting.set(caller, [waiter]);
        else tasks.push(waiter);
        queued++;
        signal?.addEventListener("abort", onAbort, { once: true });
        pump();
      });
    },
    stats: () => ({ running, queued, callers: held.size, refused }),
  };
}
