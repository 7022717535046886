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

/** Passes the messages of a stream through; an error it ends with is replaced by `map(error)`. */
export async function* mapError<T>(
  messages: AsyncIterable<T>,
  map: (err: unknown) => unknown,
): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (err) {
    throw map(err);
  }
}
