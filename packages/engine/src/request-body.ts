import type { Readable } from "node:stream";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ByteBudget } from "./byte-budget.ts";
import type { Call } from "./call.ts";
import { type Envelope, EnvelopeReader } from "./envelope-reader.ts";

export interface RequestBodyOptions {
  readMaxBytes: number;
  /** The connection's budget (whose parent is the process's). */
  budget: ByteBudget;
  /** How long the body may go without a byte while incomplete, in ms; 0: no limit. */
  idleTimeoutMs: number;
}

const noop = () => {};

/**
 * A request body read as envelopes, as its chunks arrive, within the limits: the message size at
 * each prefix, the connection's and the process's buffered bytes, an idle timeout, and the call
 * (its deadline, its cancellation). Envelopes not yet taken by the consumer count against the
 * budget; past a few of them the source is paused, so a slow handler makes a slow client, not a
 * large buffer. Read it with `all()` (unary input) or as an async iterable (streaming input).
 */
export class RequestBody implements AsyncIterable<Envelope> {
  private readonly reader: EnvelopeReader;
  private readonly queue: Envelope[] = [];
  private charged = 0;
  private ended = false;
  private failure: unknown;
  private wake: (() => void) | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private paused = false;

  private readonly source: Readable;
  private readonly options: RequestBodyOptions;

  constructor(source: Readable, call: Call, options: RequestBodyOptions) {
    this.source = source;
    this.options = options;
    this.reader = new EnvelopeReader(options.readMaxBytes);
    source.on("data", this.onData);
    source.on("end", this.onEnd);
    call.onAbort(this.onAbort);
    this.armIdle();
  }

  /** Every envelope of a body that must end before the call goes on (unary input). */
  async all(): Promise<Envelope[]> {
    const out: Envelope[] = [];
    for await (const envelope of this) out.push(envelope);
    return out;
  }

  [Symbol.asyncIterator](): AsyncIterator<Envelope> {
    return {
      next: async () => {
        for (;;) {
          const envelope = this.queue.shift();
          if (envelope !== undefined) {
            this.release(envelope.data.length);
            return { done: false, value: envelope };
          }
          if (this.failure !== undefined) throw this.failure;
          if (this.ended) return { done: true, value: undefined };
          await new Promise<void>((resolve) => {
            this.wake = resolve;
          });
        }
      },
      return: async () => {
        this.stop();
        return { done: true, value: undefined };
      },
    };
  }

  /** Stops reading: taken off the source, what is held given back. */
  stop(): void {
    this.source.off("data", this.onData);
    this.source.off("end", this.onEnd);
    clearTimeout(this.idleTimer);
    this.options.budget.give(this.charged);
    this.charged = 0;
    this.queue.length = 0;
  }

  private readonly onData = (chunk: Buffer) => {
    try {
      this.options.budget.take(chunk.length);
      this.charged += chunk.length;
      const before = this.reader.byteLength;
      const out: Envelope[] = [];
      this.reader.push(chunk, out);
      // Bytes of prefixes are done with at once; payloads when the consumer takes them.
      let payload = 0;
      for (const envelope of out) payload += envelope.data.length;
      const consumed = before + chunk.length - this.reader.byteLength - payload;
      this.release(consumed);
      for (const envelope of out) this.queue.push(envelope);
      if (this.queue.length > 4 && !this.paused) {
        this.paused = true;
        this.source.pause();
      }
      this.armIdle();
      this.signal();
    } catch (err) {
      this.fail(err);
    }
  };

  private readonly onEnd = () => {
    clearTimeout(this.idleTimer);
    // Nothing of the call may stay on the stream, which outlives it until the client has its
    // trailers: a listener would keep the call's state alive with it.
    this.source.off("data", this.onData);
    this.source.off("end", this.onEnd);
    if (!this.reader.complete) {
      this.fail(new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument));
      return;
    }
    this.ended = true;
    this.signal();
  };

  private readonly onAbort = (reason: unknown) => {
    if (this.ended) return;
    this.fail(
      reason ?? new ConnectError("the call ended before its request was read", Code.Canceled),
    );
  };

  private release(n: number): void {
    if (n <= 0) return;
    this.charged -= n;
    this.options.budget.give(n);
    if (this.paused && this.queue.length <= 1) {
      this.paused = false;
      this.source.resume();
    }
  }

  private fail(err: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    this.stop();
    // Whatever else the client sends is read and dropped, not buffered.
    this.source.on("data", noop);
    this.source.resume();
    this.signal();
  }

  private signal(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private armIdle(): void {
    const ms = this.options.idleTimeoutMs;
    // A failed body (its call may have ended before it was made) waits for nothing more.
    if (ms <= 0 || this.ended || this.failure !== undefined) return;
    if (this.idleTimer !== undefined) {
      this.idleTimer.refresh();
      return;
    }
    this.idleTimer = setTimeout(() => {
      this.fail(
        new ConnectError(`the request body stalled: no data for ${ms} ms`, Code.DeadlineExceeded),
      );
    }, ms);
  }
}
