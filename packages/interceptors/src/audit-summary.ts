import type { AuditEntry } from "./audit-log.ts";

export interface AuditSummaryOptions {
  /**
   * How long an interval is, in ms: within it, the first refusal of a caller, method and outcome
   * is written as usual and the rest are counted, then written as one summary entry when it ends.
   * 0: every refusal is written. Default 60000.
   */
  intervalMs?: number;
  /** The outcomes summarised. Default: "ResourceExhausted", "Unauthenticated", "PermissionDenied". */
  outcomes?: readonly string[];
  /**
   * The most callers, methods and outcomes counted at once. Refusals of further callers in the
   * same interval are counted together, per method and outcome, under the peer "*". Default 10000.
   */
  maxKeys?: number;
}

/** Counts repeated refusals and hands summaries on; see `AuditSummaryOptions`. */
export interface AuditSummary {
  /** True when `entry` is to be written; false when it was counted into a summary. */
  admit(entry: AuditEntry): boolean;
  /** Hands on the summaries of the interval so far and starts a new one. */
  flush(): void;
  /** Flushes and stops the interval timer. */
  stop(): void;
}

interface Repeats {
  entry: AuditEntry;
  count: number;
  first: string;
  last: string;
}

const defaultOutcomes = ["ResourceExhausted", "Unauthenticated", "PermissionDenied"];

/**
 * Summarises repeated refusals, so that a caller hammering a method (3,000 rate-limited Logins in
 * 3 s) costs one entry and a count per interval rather than one entry each: `emit` receives the
 * summaries, entries whose `repeated` says how many refusals were not written one by one.
 */
export function createAuditSummary(
  options: AuditSummaryOptions,
  emit: (entry: AuditEntry) => void,
): AuditSummary {
  const intervalMs = options.intervalMs ?? 60_000;
  const outcomes = new Set(options.outcomes ?? defaultOutcomes);
  const maxKeys = options.maxKeys ?? 10_000;
  // Callers seen in this interval, and the counts of those refused again.
  const table = new Map<string, Repeats | null>();

  const flush = () => {
    for (const repeats of table.values()) {
      if (repeats === null || repeats.count === 0) continue;
      const { count, first, last } = repeats;
      emit({ ...repeats.entry, time: last, repeated: { count, first, last } });
    }
    table.clear();
  };
  const timer = intervalMs > 0 ? setInterval(flush, intervalMs) : undefined;
  timer?.unref();

  return {
    admit(entry) {
      if (timer === undefined || !outcomes.has(entry.outcome)) return true;
      const key = `${entry.method}\u0000${entry.outcome}\u0000${entry.principal ?? ""}\u0000${entry.peer}`;
      const seen = table.get(key);
      if (seen === undefined && table.size < maxKeys) {
        // The first refusal is written; later ones count against it.
        table.set(key, null);
        return true;
      }
      const slot = seen === undefined ? `${entry.method}\u0000${entry.outcome}\u0000*` : key;
      const repeats = table.get(slot) ?? {
        entry: {
          time: entry.time,
          method: entry.method,
          principal: seen === undefined ? null : entry.principal,
          peer: seen === undefined ? "*" : entry.peer,
          request_id: "",
          outcome: entry.outcome,
          targets: { user_ids: [], order_ids: [] },
        },
        count: 0,
        first: entry.time,
        last: entry.time,
      };
      repeats.count++;
      repeats.last = entry.time;
      table.set(slot, repeats);
      return false;
    },
    flush,
    stop() {
      clearInterval(timer);
      flush();
    },
  };
}
