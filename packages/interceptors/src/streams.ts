/**
 * Passes the messages of a stream through, showing each to `see` first; a rejection from `see`
 * ends the stream with that error. Awaits only when `see` returns a promise.
 */
export async function* tap<T>(
  messages: AsyncIterable<T>,
  see: (message: T) => void | Promise<void>,
): AsyncIterable<T> {
  for await (const message of messages) {
    const seen = see(message);
    if (seen !== undefined) await seen;
    yield message;
  }
}

/**
 * Passes the messages of a stream through; an error it ends with is replaced by `map(error)`. An
 * iterator of its own, not an async generator: a generator's `yield*` costs a queued request, a
 * promise and a resumption more for every message.
 */
export function mapError<T>(
  messages: AsyncIterable<T>,
  map: (err: unknown) => unknown,
): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      const it = messages[Symbol.asyncIterator]();
      const failed = (err: unknown): never => {
        throw map(err);
      };
      return {
        next: () => {
          try {
            return it.next().then(undefined, failed);
          } catch (err) {
            return Promise.reject(map(err));
          }
        },
        return: (value?: unknown) =>
          it.return?.(value) ?? Promise.resolve({ done: true as const, value: value as T }),
      };
    },
  };
}
