import { Code, ConnectError } from "@connectrpc/connect";
import type { SpanContext } from "@opentelemetry/api";
import { countOne, type MethodStats, ok } from "./method-stats.ts";

/**
 * A streaming call in flight: counts its messages and records its outcome once. A call can end
 * without its response stream telling: on a server, a client that goes away; on a client, a cancel
 * or deadline (connect's client then stops reading the stream without a word). The call's signal
 * aborting tells both. Connect also aborts it once a call is over, by which time the call is
 * recorded and the listener gone.
 */
export class StreamCall {
  readonly stats: MethodStats;
  readonly errorCode: (e: unknown) => number;
  private readonly start: number;
  private readonly exemplar: SpanContext | undefined;
  private readonly signal: AbortSignal | undefined;
  private open = true;

  constructor(
    stats: MethodStats,
    start: number,
    exemplar: SpanContext | undefined,
    errorCode: (e: unknown) => number,
    signal: AbortSignal | undefined,
  ) {
    this.stats = stats;
    this.start = start;
    this.exemplar = exemplar;
    this.errorCode = errorCode;
    this.signal = signal;
    signal?.addEventListener("abort", this);
  }

  /** The signal's abort listener (an object, so no closure per call). */
  handleEvent(): void {
    const reason: unknown = this.signal?.reason;
    this.end(reason instanceof ConnectError ? reason.code : Code.Canceled);
  }

  end(code: number): void {
    if (!this.open) return;
    this.open = false;
    this.signal?.removeEventListener("abort", this);
    this.stats.finish(code, this.start, this.exemplar);
  }
}

/** A stream of a call, counting its messages as they are pulled through; the response stream also ends the call. */
export class CountedStream<T> implements AsyncIterator<T> {
  private readonly source: AsyncIterable<T>;
  private readonly call: StreamCall;
  private readonly outgoing: boolean;
  private readonly endsCall: boolean;
  private iterator: AsyncIterator<T> | undefined;

  constructor(source: AsyncIterable<T>, call: StreamCall, outgoing: boolean, endsCall: boolean) {
    this.source = source;
    this.call = call;
    this.outgoing = outgoing;
    this.endsCall = endsCall;
  }

  [Symbol.asyncIterator](): this {
    this.iterator = this.source[Symbol.asyncIterator]();
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    this.iterator ??= this.source[Symbol.asyncIterator]();
    return this.iterator.next().then(this.onResult, this.onError);
  }

  return(value?: unknown): Promise<IteratorResult<T>> {
    if (this.endsCall) this.call.end(Code.Canceled);
    return this.iterator?.return?.(value) ?? Promise.resolve({ done: true, value: undefined });
  }

  throw(e?: unknown): Promise<IteratorResult<T>> {
    if (this.endsCall) this.call.end(this.call.errorCode(e));
    return this.iterator?.throw?.(e) ?? Promise.reject(e);
  }

  // Fields, not methods: bound once per stream rather than once per message.
  private readonly onResult = (result: IteratorResult<T>): IteratorResult<T> => {
    if (result.done === true) {
      if (this.endsCall) this.call.end(ok);
    } else {
      countOne(this.call.stats, this.outgoing);
    }
    return result;
  };

  private readonly onError = (e: unknown): never => {
    if (this.endsCall) this.call.end(this.call.errorCode(e));
    throw e;
  };
}
