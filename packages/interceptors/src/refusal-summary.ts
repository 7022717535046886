import type { CodeName, LogLevel } from "./logging.ts";

export interface RefusalSummaryOptions {
  /**
   * How long an interval is, in ms. Within it, the first refused call of each method and code is
   * logged as usual; the others are counted, and when the interval ends one line per method and
   * code says how many there were. 0: every refusal is logged on its own line. Default 10000.
   */
  intervalMs?: number;
  /**
   * The codes counted rather than logged one by one: the answers a flood of calls gets.
   * Default: "ResourceExhausted" (rate and stream limits, full queues), "Unauthenticated" and
   * "PermissionDenied".
   */
  codes?: readonly CodeName[];
  /** Receives each summary: written at `level`, the level of the refusals it counts. */
  emit(level: LogLevel, fields: RefusalCounts, message: string): void;
}

/** The fields of a summary line. */
export interface RefusalCounts {
  method: string;
  code: CodeName;
  /** Refusals in the interval that were not logged on their own line. */
  count: number;
  /** Different callers' addresses among them, at most `maxPeers` counted. */
  peers: number;
  /** The addresses of the first few of them (at most 5), to tell a flood from a crowd. */
  first_peers: string[];
  interval_ms: number;
}

/** Counts repeated refusals for the logging interceptor; see `RefusalSummaryOptions`. */
export interface RefusalSummary {
  /**
   * True when a call that ended with `code` is to be logged on its own line; false when it was
   * counted into the interval's summary (the first of each method and code is logged).
   */
  admit(method: string, code: CodeName, level: LogLevel, peer: string): boolean;
  /** Changes the interval from the next one on (a live configuration change); 0: off. */
  setIntervalMs(intervalMs: number): void;
  /** Writes the summaries of the interval so far and starts a new one. */
  flush(): void;
  /** Flushes and stops the interval's timer (at shutdown: no count is lost). */
  stop(): void;
}

const defaultCodes: readonly CodeName[] = [
  "ResourceExhausted",
  "Unauthenticated",
  "PermissionDenied",
];
const maxPeers = 1000;
const shownPeers = 5;

interface Counter {
  method: string;
  code: CodeName;
  level: LogLevel;
  count: number;
  peers: Set<string>;
}

/**
 * Keeps a flood of refused calls (a client past its rate limit, a scanner without a token) from
 * writing one log line per call: the first of each method and code in an interval is logged, the
 * rest are counted into one line per interval ("refused calls, summarised"). Memory is bounded:
 * one counter per method and code, at most 1000 addresses each.
 */
export function createRefusalSummary(options: RefusalSummaryOptions): RefusalSummary {
  let intervalMs = options.intervalMs ?? 10_000;
  const codes = new Set(options.codes ?? defaultCodes);
  const counters = new Map<string, Counter | null>();
  let timer: NodeJS.Timeout | undefined;

  const flush = () => {
    for (const counter of counters.values()) {
      if (counter === null || counter.count === 0) continue;
      const peers = [...counter.peers];
      options.emit(
        counter.level,
        {
          method: counter.method,
          code: counter.code,
          count: counter.count,
          peers: peers.length,
          first_peers: peers.slice(0, shownPeers),
          interval_ms: intervalMs,
        },
        "refused calls, summarised",
      );
    }
    counters.clear();
  };

  return {
    admit(method, code, level, peer) {
      if (intervalMs === 0 || !codes.has(code)) return true;
      const key = `${method}\u0000${code}`;
      const counter = counters.get(key);
      if (counter === undefined) {
        // The first in this interval is logged; the interval begins with it, so that nothing
        // runs while nothing is refused.
        counters.set(key, null);
        if (timer === undefined) {
          timer = setTimeout(() => {
            timer = undefined;
            flush();
          }, intervalMs);
          timer.unref();
        }
        return true;
      }
      const next = counter ?? { method, code, level, count: 0, peers: new Set<string>() };
      next.count++;
      if (next.peers.size < maxPeers) next.peers.add(peer);
      counters.set(key, next);
      return false;
    },
    setIntervalMs(next) {
      intervalMs = next;
    },
    flush,
    stop() {
      clearTimeout(timer);
      timer = undefined;
      flush();
    },
  };
}
