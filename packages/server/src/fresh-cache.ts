import { Code, ConnectError } from "@connectrpc/connect";

export interface FreshCacheSettings {
  /** How long a value read is used before it is read again, in ms. */
  maxAgeMs: number;
  /** The most values kept; the least recently read go first. */
  maxEntries: number;
  /** Monotonic clock in ms. */
  now: () => number;
  /** The message of the UNAVAILABLE error a failed read turns into. */
  unavailable: string;
}

/**
 * Values read through `read`, kept `maxAgeMs`: `get` answers synchronously from memory, or with
 * the promise of a read (shared by concurrent callers). A failed read rejects with UNAVAILABLE
 * and `settings.unavailable` as its message, the failure as its cause, and is not kept.
 */
export function createFreshCache<K, R, V>(
  read: (key: K) => Promise<R>,
  keep: (read: R) => V,
  settings: FreshCacheSettings,
): { get(key: K): V | Promise<V>; forget(key: K): void } {
  const entries = new Map<K, { value: V; readAt: number }>();
  const reading = new Map<K, Promise<V>>();
  return {
    get(key) {
      const entry = entries.get(key);
      if (entry !== undefined && settings.now() - entry.readAt < settings.maxAgeMs) {
        return entry.value;
      }
      let pending = reading.get(key);
      if (pending === undefined) {
        const readAt = settings.now();
        pending = read(key).then(
          (result) => {
            reading.delete(key);
            const value = keep(result);
            // Re-inserted, so that the Map's order is the order of reads: the first key is the oldest.
            entries.delete(key);
            if (entries.size >= settings.maxEntries) {
              const oldest = entries.keys().next().value;
              if (oldest !== undefined) entries.delete(oldest);
            }
            entries.set(key, { value, readAt });
            return value;
          },
          (err: unknown) => {
            reading.delete(key);
            throw new ConnectError(
              settings.unavailable,
              Code.Unavailable,
              undefined,
              undefined,
              err,
            );
          },
        );
        reading.set(key, pending);
      }
      return pending;
    },
    forget(key) {
      entries.delete(key);
    },
  };
}
