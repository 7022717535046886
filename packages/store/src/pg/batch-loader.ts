/** Loads values by key, gathering the keys asked for in one turn of the event loop. */
export type BatchLoader<K, V> = (key: K) => Promise<V | undefined>;

export interface BatchLoaderOptions<K, V> {
  /**
   * Loads every key of a batch (distinct, at most `maxBatch`) in one query; a key missing from
   * the map has no value.
   */
  load(keys: K[]): Promise<Map<K, V>>;
  /** Most keys in one batch; more wait for the next. Default 500. */
  maxBatch?: number;
}

/**
 * A loader that answers every `key` asked for during one turn of the event loop with one call of
 * `load` (dataloader's idea): under load, the calls that a burst of requests makes share one
 * round trip, one parse of the result and one turn in which their responses are written, where
 * each would otherwise cost all three. A lone call waits one turn (`setImmediate`), no more. A
 * failed `load` fails every call of its batch with its error.
 */
export function createBatchLoader<K, V>(options: BatchLoaderOptions<K, V>): BatchLoader<K, V> {
  const maxBatch = options.maxBatch ?? 500;
  type Waiter = { resolve: (value: V | undefined) => void; reject: (err: unknown) => void };
  let pending = new Map<K, Waiter[]>();
  let scheduled = false;

  const flush = () => {
    scheduled = false;
    let batch = pending;
    if (batch.size > maxBatch) {
      const keys = [...batch.keys()];
      batch = new Map(keys.slice(0, maxBatch).map((key) => [key, pending.get(key) as Waiter[]]));
      pending = new Map(keys.slice(maxBatch).map((key) => [key, pending.get(key) as Waiter[]]));
      schedule();
    } else {
      pending = new Map();
    }
    options.load([...batch.keys()]).then(
      (values) => {
        for (const [key, waiters] of batch) {
          const value = values.get(key);
          for (const waiter of waiters) waiter.resolve(value);
        }
      },
      (err: unknown) => {
        for (const waiters of batch.values()) for (const waiter of waiters) waiter.reject(err);
      },
    );
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(flush);
  };

  return (key) =>
    new Promise<V | undefined>((resolve, reject) => {
      const waiters = pending.get(key);
      if (waiters === undefined) pending.set(key, [{ resolve, reject }]);
      else waiters.push({ resolve, reject });
      schedule();
    });
}
