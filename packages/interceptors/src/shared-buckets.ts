import { Code, ConnectError } from "@connectrpc/connect";
import type { Limit } from "./rate-limit.ts";

/** Token buckets every instance sees: a row per bucket in a database, for example. */
export interface TokenSource {
  /**
   * Refills the bucket `key` (full when new) at `limit`, and takes up to `count` whole tokens
   * from it, atomically. Resolves with how many were taken and, when fewer than `count`, how long
   * until the next whole token is there, in ms.
   */
  take(key: string, limit: Limit, count: number): Promise<{ granted: number; waitMs: number }>;
}

export interface SharedBucketsOptions {
  source: TokenSource;
  /**
   * The most tokens reserved from the source in one round trip. A key's reservation starts at 1
   * and doubles each time its reserve ran out while in use, halving when tokens were left over,
   * but never beyond a quarter of the burst. Default 10.
   */
  maxBatch?: number;
  /** How long reserved tokens may be used; those left then are dropped. Default 1000 ms. */
  holdMs?: number;
  /** How long a call waits for the source before it counts as unavailable. Default 100 ms. */
  timeoutMs?: number;
  /**
   * What calls get while the source is unavailable (it failed or was too slow; it is tried again
   * after `retryMs`): "local", limits counted by this process alone; "refuse", UNAVAILABLE.
   * Default "local".
   */
  whenUnavailable?: "local" | "refuse";
  /** How long after a failure the source is left alone. Default 1000 ms. */
  retryMs?: number;
  /** Told when the source fails and when it answers again. Default: nothing. */
  onStateChange?: (available: boolean, err?: unknown) => void;
  /** The most keys kept; the oldest are dropped first. Default 100000. */
  maxKeys?: number;
  /** Monotonic clock in ms, for tests. Default `performance.now`. */
  now?: () => number;
}

/** What `SharedBuckets.take` answers: ms to wait (0: go on), or "local": count it locally. */
export type SharedVerdict = number | "local";

/** Rate limits shared through a `TokenSource`, reserved in batches; see `createSharedBuckets`. */
export interface SharedBuckets {
  /**
   * Takes a token of `key` for one call: synchronously from the reserve when it holds one, else
   * after a round trip to the source. Throws UNAVAILABLE when the source is unavailable and
   * `whenUnavailable` is "refuse".
   */
  take(key: string, limit: Limit): SharedVerdict | Promise<SharedVerdict>;
}

interface Reserve {
  tokens: number;
  /** Until when the reserved tokens may be used. */
  until: number;
  /** How many tokens the next reservation asks for. */
  size: number;
  /** Before then the source said the bucket was empty: refuse without asking. */
  emptyUntil: number;
  pending: Promise<void> | undefined;
}

/**
 * A rate limit whose budget holds across every instance and worker: each call takes a token from
 * a bucket every instance shares (`TokenSource`), but not one at a time. Each instance reserves a
 * few tokens per key in one round trip and hands them out locally, so a caller at a steady rate
 * costs a round trip every `maxBatch` calls; a key the source said is empty is refused locally
 * until its next token is due. Every call spends a token the source granted, so no caller gets
 * more than the shared limit; tokens reserved and not used within `holdMs` are lost, which errs
 * on the strict side. A source that fails or takes longer than `timeoutMs` is left alone for
 * `retryMs`, while calls are limited by this process alone or refused (`whenUnavailable`).
 */
export function createSharedBuckets(options: SharedBucketsOptions): SharedBuckets {
  const source = options.source;
  const maxBatch = options.maxBatch ?? 10;
  const holdMs = options.holdMs ?? 1000;
  const timeoutMs = options.timeoutMs ?? 100;
  const retryMs = options.retryMs ?? 1000;
  const maxKeys = options.maxKeys ?? 100_000;
  const refuse = (options.whenUnavailable ?? "local") === "refuse";
  const now = options.now ?? (() => performance.now());
  const reserves = new Map<string, Reserve>();
  let unavailableUntil = 0;
  let available = true;

  const unavailable = (): SharedVerdict => {
    if (!refuse) return "local";
    throw new ConnectError(
      "rate limits cannot be checked right now; retry shortly",
      Code.Unavailable,
    );
  };

  const fail = (err: unknown) => {
    unavailableUntil = now() + retryMs;
    if (available) {
      available = false;
      options.onStateChange?.(false, err);
    }
  };

  const reserve = (key: string, limit: Limit, entry: Reserve): Promise<void> => {
    const count = Math.max(1, Math.min(entry.size, maxBatch, Math.floor(limit.burst / 4)));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer from the token source in ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    return Promise.race([source.take(key, limit, count), timeout]).then(
      ({ granted, waitMs }) => {
        clearTimeout(timer);
        entry.pending = undefined;
        if (!available) {
          available = true;
          options.onStateChange?.(true);
        }
        const t = now();
        // Tokens left from the last reservation: it was too big.
        entry.size =
          entry.tokens >= 1
            ? Math.max(1, Math.ceil(entry.size / 2))
            : Math.min(entry.size * 2, maxBatch);
        entry.tokens = granted;
        entry.until = t + holdMs;
        if (granted < count) entry.emptyUntil = t + waitMs;
      },
      (err: unknown) => {
        clearTimeout(timer);
        entry.pending = undefined;
        fail(err);
      },
    );
  };

  const take = (key: string, limit: Limit): SharedVerdict | Promise<SharedVerdict> => {
    const t = now();
    let entry = reserves.get(key);
    if (entry === undefined) {
      if (reserves.size >= maxKeys) {
        const oldest = reserves.keys().next().value;
        if (oldest !== undefined) reserves.delete(oldest);
      }
      entry = { tokens: 0, until: 0, size: 1, emptyUntil: 0, pending: undefined };
      reserves.set(key, entry);
    }
    if (entry.tokens >= 1 && t < entry.until) {
      entry.tokens -= 1;
      return 0;
    }
    if (t < entry.emptyUntil) return entry.emptyUntil - t;
    if (t < unavailableUntil) return unavailable();
    const settled = entry;
    settled.pending ??= reserve(key, limit, settled);
    return settled.pending.then(() => {
      if (now() < unavailableUntil) return unavailable();
      if (settled.tokens >= 1) {
        settled.tokens -= 1;
        return 0;
      }
      // Others waiting on the same reservation took its tokens: ask again.
      return take(key, limit);
    });
  };

  return { take };
}
