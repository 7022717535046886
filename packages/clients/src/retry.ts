import type {
  DescMessage,
  DescMethod,
  DescMethodStreaming,
  DescMethodUnary,
  MessageInitShape,
} from "@bufbuild/protobuf";
import { durationMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ContextValues, type Transport } from "@connectrpc/connect";
import { createAsyncIterable } from "@connectrpc/connect/protocol";
import { RetryInfoSchema } from "@keel/gen/errdetails/v1/errdetails_pb";
import { wasNeverSent } from "./endpoint-errors.ts";
import { createIdempotencyCheck, type IdempotencyOptions } from "./idempotency.ts";
import { createRetryBudget, type RetryBudget, type RetryBudgetOptions } from "./retry-budget.ts";

/** What a call's headers may be given as. */
type HeadersInit = ConstructorParameters<typeof Headers>[0];

export interface RetryOptions extends IdempotencyOptions {
  /** Attempts per call, the first one included; 1 turns retries off. Default 3. */
  maxAttempts?: number;
  /** The backoff before the first retry is random in [0, initialBackoffMs) ms. Default 100. */
  initialBackoffMs?: number;
  /** The backoff's upper bound grows by this factor per retry. Default 2. */
  backoffMultiplier?: number;
  /** Cap on the backoff's upper bound, in ms. Default 5000. */
  maxBackoffMs?: number;
  /**
   * The codes retried on idempotent calls. Default `[Code.Unavailable]`. Add
   * `Code.ResourceExhausted` to wait out rate limits: such a call is retried only when the
   * server says when (a `RetryInfo` detail or a `retry-after` header), since a message over a
   * size limit fails the same way every time.
   */
  codes?: Code[];
  /**
   * Limits retries to a share of recent calls (shared by every call of the client), so that
   * retries cannot multiply an outage; false for no budget. Default: `createRetryBudget`'s
   * defaults, 20% of calls plus 10 per second.
   */
  budget?: Omit<RetryBudgetOptions, "now"> | false;
}

export interface RetryTransportOptions extends RetryOptions {
  /** Random numbers in [0, 1), for the jitter. Default `Math.random`. */
  random?: () => number;
  /** The clock. Default `Date.now`. */
  now?: () => number;
  /** Waits `ms`, rejecting when `signal` aborts. Default: a timer. */
  sleep?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
}

/**
 * How long the server asks the client to wait before retrying: its `errdetails.v1.RetryInfo`
 * detail, else its `retry-after` header (seconds or an HTTP date). Negative when the server says
 * not to retry; undefined when it says nothing.
 */
export function serverRetryDelayMs(
  error: ConnectError,
  now: number = Date.now(),
): number | undefined {
  const [info] = error.findDetails(RetryInfoSchema);
  if (info?.retryDelay !== undefined) return durationMs(info.retryDelay);
  const retryAfter = error.metadata.get("retry-after")?.trim();
  if (retryAfter === undefined || retryAfter === "") return undefined;
  if (/^\d+$/.test(retryAfter)) return Number(retryAfter) * 1000;
  const date = Date.parse(retryAfter);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * Retries failed calls over `inner`, which may send each attempt to another endpoint. A call is
 * retried when all of these hold:
 *
 * - it is unary, or server-streaming and no response message has arrived yet (client and bidi
 *   streams are never retried: their requests are gone);
 * - it failed with one of `codes` and is idempotent (a read, or a write with an idempotency
 *   key) — or it certainly never reached a server (no connection could be made, or no endpoint
 *   was available), which makes any call safe to send again;
 * - it has attempts left, the retry budget allows one more, and the backoff ends before the
 *   call's deadline.
 *
 * The backoff is exponential with full jitter, as gRPC's; a delay the server asks for replaces
 * it. Retries carry `grpc-previous-rpc-attempts`, as gRPC's do. The error of the last attempt is
 * what the caller gets.
 */
export function createRetryTransport(
  inner: Transport,
  options: RetryTransportOptions = {},
): Transport {
  const maxAttempts = options.maxAttempts ?? 3;
  const initialBackoffMs = options.initialBackoffMs ?? 100;
  const multiplier = options.backoffMultiplier ?? 2;
  const maxBackoffMs = options.maxBackoffMs ?? 5000;
  if (
    !(maxAttempts >= 1) ||
    !(initialBackoffMs >= 0) ||
    !(multiplier >= 1) ||
    !(maxBackoffMs >= 0)
  ) {
    throw new RangeError(
      "retry needs maxAttempts >= 1, initialBackoffMs >= 0, backoffMultiplier >= 1 and maxBackoffMs >= 0",
    );
  }
  const codes = new Set(options.codes ?? [Code.Unavailable]);
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? pause;
  const isIdempotent = createIdempotencyCheck(options);
  const budget: RetryBudget | undefined =
    options.budget === false ? undefined : createRetryBudget({ now, ...options.budget });

  /** The delay before retrying after the `attempt`th attempt failed, or undefined for no retry. */
  const delayAfter = (error: ConnectError, attempt: number, idempotent: boolean) => {
    if (attempt >= maxAttempts) return undefined;
    const unsent = wasNeverSent(error);
    if (!unsent && !(idempotent && codes.has(error.code))) return undefined;
    const pushback = serverRetryDelayMs(error, now());
    if (pushback !== undefined) return pushback < 0 ? undefined : pushback;
    if (error.code === Code.ResourceExhausted && !unsent) return undefined;
    return random() * Math.min(maxBackoffMs, initialBackoffMs * multiplier ** (attempt - 1));
  };

  async function withRetries<R>(
    method: DescMethod,
    request: unknown,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeadersInit | undefined,
    attempt: (timeoutMs: number | undefined, header: HeadersInit | undefined) => Promise<R>,
  ): Promise<R> {
    const deadline = timeoutMs !== undefined && timeoutMs > 0 ? now() + timeoutMs : undefined;
    const idempotent = isIdempotent(method, request);
    budget?.onCall();
    for (let n = 1; ; n++) {
      const remaining = deadline === undefined ? undefined : Math.max(1, deadline - now());
      try {
        return await attempt(remaining, n === 1 ? header : withAttemptCount(header, n - 1));
      } catch (err) {
        const error = ConnectError.from(err);
        const delay = signal?.aborted === true ? undefined : delayAfter(error, n, idempotent);
        if (
          delay === undefined ||
          (deadline !== undefined && now() + delay >= deadline) ||
          (budget !== undefined && !budget.tryRetry())
        ) {
          throw error;
        }
        await sleep(delay, signal);
      }
    }
  }

  return {
    unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: MessageInitShape<I>,
      contextValues?: ContextValues,
    ) {
      return withRetries(method, input, signal, timeoutMs, header, (remaining, attemptHeader) =>
        inner.unary(method, signal, remaining, attemptHeader, input, contextValues),
      );
    },

    async stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: AsyncIterable<MessageInitShape<I>>,
      contextValues?: ContextValues,
    ) {
      if (method.methodKind !== "server_streaming") {
        return inner.stream(method, signal, timeoutMs, header, input, contextValues);
      }
      // A server-streaming call sends one request: keep it, to send it again.
      const requests: MessageInitShape<I>[] = [];
      for await (const request of input) requests.push(request);
      return withRetries(method, requests[0], signal, timeoutMs, header, async (remaining, h) => {
        const res = await inner.stream(
          method,
          signal,
          remaining,
          h,
          createAsyncIterable(requests),
          contextValues,
        );
        // Wait for the first message (or the end): until then, a failure can still be retried.
        const it = res.message[Symbol.asyncIterator]();
        const first = await it.next();
        return { ...res, message: prepend(first, it) };
      });
    },
  };
}

/** The call's headers plus gRPC's count of earlier attempts. */
function withAttemptCount(header: HeadersInit | undefined, previous: number): Headers {
  const h = new Headers(header);
  h.set("grpc-previous-rpc-attempts", String(previous));
  return h;
}

/** The rest of a stream, with its first result (already read) in front. */
function prepend<T>(first: IteratorResult<T>, rest: AsyncIterator<T>): AsyncIterable<T> {
  let pending: IteratorResult<T> | undefined = first;
  return {
    [Symbol.asyncIterator]: () => ({
      next() {
        const result = pending;
        pending = undefined;
        return result === undefined ? rest.next() : Promise.resolve(result);
      },
      async return(value?: unknown) {
        pending = undefined;
        return (await rest.return?.(value)) ?? { done: true, value: undefined };
      },
    }),
  };
}

/** Waits `ms`; rejects with the signal's reason when it aborts. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(ConnectError.from(signal?.reason, Code.Canceled));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    if (signal?.aborted === true) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
  });
}
