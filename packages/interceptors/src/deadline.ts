import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { deadlineKey } from "./context.ts";

export interface DeadlineOptions {
  /**
   * The deadline, in milliseconds, of a unary or client-streaming call whose client set none.
   * Default 30000; 0 means none.
   */
  defaultTimeoutMs?: number;
  /**
   * The same for server-streaming and bidi calls, which are often meant to stay open (live
   * feeds). Default 0: none.
   */
  defaultStreamTimeoutMs?: number;
  /** Per-method defaults that win over the two above, by procedure ("user.v1.UserService/GetUser"). */
  methods?: Record<string, number>;
}

/**
 * Makes deadlines hold. A client's deadline (`grpc-timeout`, `connect-timeout-ms`) is enforced by
 * connect already; a call that sets none gets the configured default. Either way the call ends
 * with DEADLINE_EXCEEDED when its time is up, even if the handler does not notice, and the handler's
 * `ctx.signal` aborts so that its work stops. `remainingTimeMs(ctx)` gives what is left to pass on
 * to outgoing calls.
 */
export function createDeadlineInterceptor(options: DeadlineOptions = {}): Interceptor {
  const unary = options.defaultTimeoutMs ?? 30_000;
  const stream = options.defaultStreamTimeoutMs ?? 0;
  const perMethod = new Map(Object.entries(options.methods ?? {}));
  const defaults = new WeakMap<DescMethod, number>();
  const defaultFor = (method: DescMethod) => {
    let ms = defaults.get(method);
    if (ms === undefined) {
      const live =
        method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming";
      ms = perMethod.get(`${method.parent.typeName}/${method.name}`) ?? (live ? stream : unary);
      defaults.set(method, ms);
    }
    return ms;
  };

  return (next) => async (req) => {
    let signal = req.signal;
    let timer: NodeJS.Timeout | undefined;
    const clientSetOne = req.header.has("grpc-timeout") || req.header.has("connect-timeout-ms");
    const ms = clientSetOne ? 0 : defaultFor(req.method);
    if (ms > 0) {
      const controller = new AbortController();
      const onAbort = () => controller.abort(req.signal.reason);
      req.signal.addEventListener("abort", onAbort, { once: true });
      timer = setTimeout(() => {
        req.signal.removeEventListener("abort", onAbort);
        controller.abort(
          new ConnectError(`the default deadline of ${ms} ms expired`, Code.DeadlineExceeded),
        );
      }, ms);
      signal = controller.signal;
      req.contextValues.set(deadlineKey, Date.now() + ms);
    } else if (!clientSetOne) {
      // Neither the client nor the configuration sets a deadline: nothing to race.
      return next(req);
    }
    const expired = new Promise<never>((_, reject) => {
      const fail = () => reject(ConnectError.from(signal.reason));
      if (signal.aborted) fail();
      else signal.addEventListener("abort", fail, { once: true });
    });
    expired.catch(() => {});
    try {
      const res = await Promise.race([next({ ...req, signal }), expired]);
      if (!res.stream) {
        clearTimeout(timer);
        return res;
      }
      return { ...res, message: raceStream(res.message, expired, () => clearTimeout(timer)) };
    } catch (err) {
      clearTimeout(timer);
      throw err;
    }
  };
}

/** Ends a response stream with the deadline's error as soon as it expires. */
async function* raceStream<T>(stream: AsyncIterable<T>, expired: Promise<never>, done: () => void) {
  const iterator = stream[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), expired]);
      if (next.done) return;
      yield next.value;
    }
  } finally {
    done();
    // Not awaited: a generator's return() waits for its pending step, which may never come; the
    // handler sees its signal abort and ends on its own.
    iterator.return?.()?.catch(() => {});
  }
}
