import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { abortError, type CallProgress, callProgressKey } from "./call-progress.ts";
import type { Response } from "./chain.ts";
import { deadlineKey } from "./context.ts";
import { perMethod } from "./per-method.ts";

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
 * The deadline, in milliseconds, a call of `method` gets when its client sets none (0: none), as
 * the deadline interceptor applies it. A transport that arms its own timer with it sets
 * `deadlineKey`, and the interceptor then only enforces it.
 */
export function deadlineDefaults(options: DeadlineOptions = {}): (method: DescMethod) => number {
  const unary = options.defaultTimeoutMs ?? 30_000;
  const stream = options.defaultStreamTimeoutMs ?? 0;
  const byName = new Map(Object.entries(options.methods ?? {}));
  return perMethod((method) => {
    const live = method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming";
    return byName.get(`${method.parent.typeName}/${method.name}`) ?? (live ? stream : unary);
  });
}

/** The error of a call whose default deadline expired. */
export function defaultDeadlineExpired(ms: number): ConnectError {
  return new ConnectError(`the default deadline of ${ms} ms expired`, Code.DeadlineExceeded);
}

/**
 * Makes deadlines hold. A client's deadline (`grpc-timeout`, `connect-timeout-ms`) is enforced by
 * connect already; a call that sets none gets the configured default. Either way the call ends
 * with DEADLINE_EXCEEDED when its time is up, even if the handler does not notice, and the handler's
 * `ctx.signal` aborts so that its work stops. `remainingTimeMs(ctx)` gives what is left to pass on
 * to outgoing calls. When the transport has armed the call's deadline on its signal already (it
 * set `deadlineKey`), the signal is only raced: no second timer.
 */
export function createDeadlineInterceptor(options: DeadlineOptions = {}): Interceptor {
  const defaultFor = deadlineDefaults(options);

  return (next) => (req) => {
    const progress = req.contextValues.get(callProgressKey);
    if (progress !== undefined) {
      if (progress.isAborted) return Promise.reject(abortError(progress.reason));
      return progress.hasDeadline ? raceProgress(next(req), progress) : next(req);
    }
    const armed =
      req.contextValues.get(deadlineKey) !== undefined ||
      req.header.has("grpc-timeout") ||
      req.header.has("connect-timeout-ms");
    const ms = armed ? 0 : defaultFor(req.method);
    // Neither the client nor the configuration sets a deadline: nothing to race.
    if (ms <= 0 && !armed) return next(req);
    // One promise that settles first with whatever comes first: the answer, or the deadline
    // (the signal's abort: the client's deadline or cancellation, or the default deadline).
    return new Promise((resolve, reject) => {
      const parent = req.signal;
      let signal = parent;
      let timer: NodeJS.Timeout | undefined;
      if (ms > 0) {
        const controller = new AbortController();
        signal = controller.signal;
        timer = setTimeout(() => controller.abort(defaultDeadlineExpired(ms)), ms);
        req.contextValues.set(deadlineKey, Date.now() + ms);
        if (parent.aborted) controller.abort(parent.reason);
        else
          parent.addEventListener("abort", () => controller.abort(parent.reason), { once: true });
      }
      let settled = false;
      const expire = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(ConnectError.from(signal.reason));
      };
      if (signal.aborted) return expire();
      signal.addEventListener("abort", expire, { once: true });
      next(signal === parent ? req : { ...req, signal }).then(
        (res) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener("abort", expire);
          if (!res.stream) {
            clearTimeout(timer);
            resolve(res);
          } else {
            resolve({
              ...res,
              message: raceStream(
                res.message,
                (expire) => onSignal(signal, expire),
                () => clearTimeout(timer),
              ),
            });
          }
        },
        (err: unknown) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener("abort", expire);
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  };
}

/**
 * The chain's answer, or the call's end (its deadline, a cancellation) if that comes first; a
 * response stream is raced message by message.
 */
function raceProgress(pending: Promise<Response>, progress: CallProgress): Promise<Response> {
  return new Promise((resolve, reject) => {
    // The call ends after its answer too (completed): no error is made for that.
    let settled = false;
    progress.onAbort((reason) => {
      if (settled) return;
      settled = true;
      reject(abortError(reason));
    });
    pending.then(
      (res) => {
        if (settled) return;
        settled = true;
        if (!res.stream) {
          resolve(res);
          return;
        }
        resolve({
          ...res,
          message: raceStream(res.message, (expire) => {
            let live = true;
            progress.onAbort((reason) => {
              if (live) expire(reason);
            });
            return () => {
              live = false;
            };
          }),
        });
      },
      (err: unknown) => {
        settled = true;
        reject(err);
      },
    );
  });
}

/** Calls `expire` with the signal's reason when it aborts; answers what takes that back. */
function onSignal(signal: AbortSignal, expire: (reason: unknown) => void): () => void {
  const listener = () => expire(signal.reason);
  if (signal.aborted) listener();
  else signal.addEventListener("abort", listener, { once: true });
  return () => signal.removeEventListener("abort", listener);
}

/**
 * Ends a response stream with the deadline's error as soon as the call ends: `watch` calls its
 * argument with why, and answers what stops watching. An iterator of its own: racing each step
 * against one promise of the deadline (`Promise.race`) would leave a reaction on that promise for
 * every message until the call ends, about 300 bytes each, unbounded on a long stream.
 */
function raceStream<T>(
  stream: AsyncIterable<T>,
  watch: (expire: (reason: unknown) => void) => () => void,
  done: () => void = () => {},
): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      const iterator = stream[Symbol.asyncIterator]();
      let failure: ConnectError | undefined;
      let closed = false;
      // The step the consumer awaits, failed at once when the call ends.
      let pending: ((err: unknown) => void) | undefined;
      let unwatch = () => {};
      const close = () => {
        if (closed) return;
        closed = true;
        unwatch();
        done();
        // Not awaited: a generator's return() waits for its pending step, which may never come;
        // the handler sees its signal abort and ends on its own.
        iterator.return?.()?.catch(() => {});
      };
      unwatch = watch((reason) => {
        if (closed || failure !== undefined) return;
        failure = abortError(reason);
        const fail = pending;
        pending = undefined;
        if (fail === undefined) return;
        close();
        fail(failure);
      });
      const finished = { done: true, value: undefined } as IteratorReturnResult<undefined>;
      return {
        next() {
          if (closed) return Promise.resolve(finished);
          if (failure !== undefined) {
            close();
            return Promise.reject(failure);
          }
          return new Promise<IteratorResult<T>>((resolve, reject) => {
            pending = reject;
            iterator.next().then(
              (step) => {
                if (pending !== reject) return;
                pending = undefined;
                if (step.done === true) close();
                resolve(step);
              },
              (err: unknown) => {
                if (pending !== reject) return;
                pending = undefined;
                close();
                reject(err);
              },
            );
          });
        },
        return(value?: unknown) {
          close();
          return Promise.resolve({ done: true, value: value as T });
        },
        throw(err?: unknown) {
          close();
          return Promise.reject(err);
        },
      };
    },
  };
}
