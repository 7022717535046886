import type { Readable } from "node:stream";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ByteBudget } from "./byte-budget.ts";
import type { Call } from "./call.ts";
import { type BodyReader, type Envelope, EnvelopeReader } from "./envelope-reader.ts";
import type { IdleWatch, Watched } from "./idle-watch.ts";
import type { Linked } from "./linked-list.ts";
import { owned } from "./owned-bytes.ts";

export interface RequestBodyOptions {
  readMaxBytes: number;
  /** The connection's budget (whose parent is the process's). */
  budget: ByteBudget;
  /** Fails bodies that go without a byte too long (one per engine). */
  idle: IdleWatch;
}

const noop = () => {};

/** The body a source is being read into, for the listeners every body shares (see below). */
const bodyOf = Symbol("keel request body");

type BodySource = Readable & { [bodyOf]?: RequestBody | undefined };

// One function of each for every body, finding its body on the source they are called on: a
// body's own closures would be three per call.
function onSourceData(this: BodySource, chunk: Buffer): void {
  this[bodyOf]?.received(chunk);
}

function onSourceEnd(this: BodySource): void {
  this[bodyOf]?.sourceEnded();
}

/**
 * What the budget is charged for each piece a body holds (a chunk, a message), besides its bytes:
 * about what a piece's own memory costs (its object, its allocation; measured 340 bytes for a
 * 1-byte one), so that a body of many tiny pieces is counted at what it takes.
 */
const pieceCost = 384;

/** Bodies holding bytes past the read that brought them, made to own them (see `owned-bytes.ts`). */
const keeping: RequestBody[] = [];

/**
 * Once the reads of this turn of the event loop are done (bodies whose last chunk came with them
 * have ended and been handed on), whatever bodies still hold is copied into memory of its own.
 */
function ownKept(): void {
  for (let i = 0; i < keeping.length; i++) (keeping[i] as RequestBody).own();
  keeping.length = 0;
}

/**
 * A request body read as envelopes, as its chunks arrive, within the limits: the message size at
 * each prefix, the connection's and the process's buffered bytes, an idle timeout, and the call
 * (its deadline, its cancellation). Envelopes not yet taken by the consumer count against the
 * budget; past a few of them the source is paused, so a slow handler makes a slow client, not a
 * large buffer. Read it with `all()` (unary input) or as an async iterable (streaming input).
 */
export class RequestBody implements AsyncIterable<Envelope>, Watched {
  lastActivity = performance.now();
  linkPrevious: Linked | null = null;
  linkNext: Linked | null = null;
  private readonly reader: BodyReader;
  private readonly queue: Envelope[] = [];
  /** The payload bytes of `queue`. */
  private queuedBytes = 0;
  /** What the budget was charged for (see `settle`). */
  private charged = 0;
  private ended = false;
  private failure: unknown;
  private wake: (() => void) | undefined;
  /** Settle what `all()` answered, while it waits. */
  private resolveAll: ((envelopes: Envelope[]) => void) | undefined;
  private rejectAll: ((reason: unknown) => void) | undefined;
  private paused = false;
  /** Waiting among `keeping` to own what it holds. */
  private kept = false;
  /** Read whole by `all()`: never paused, since nothing takes envelopes before the end. */
  private collecting = false;

  private readonly source: Readable;
  private readonly options: RequestBodyOptions;

  /** @param reader what splits the bytes into messages; default gRPC's envelopes. */
  constructor(
    source: Readable,
    call: Call,
    options: RequestBodyOptions,
    reader: BodyReader = new EnvelopeReader(options.readMaxBytes),
  ) {
    this.source = source;
    this.options = options;
    this.reader = reader;
    // The listeners below are shared: a second body on one source would get every chunk twice.
    if ((source as BodySource)[bodyOf] !== undefined) {
      throw new Error("a request body is already being read from this stream");
    }
    (source as BodySource)[bodyOf] = this;
    source.on("data", onSourceData);
    source.on("end", onSourceEnd);
    call.onAbort(this);
    // A failed body (its call may have ended before it was made) waits for nothing more.
    if (this.failure === undefined) options.idle.watch(this);
  }

  /** The body went without a byte for `ms`: the call fails. */
  stall(ms: number): void {
    this.fail(
      new ConnectError(`the request body stalled: no data for ${ms} ms`, Code.DeadlineExceeded),
    );
  }

  /**
   * Every envelope of a body that must end before the call goes on (unary input): one promise,
   * settled when the body ends or fails, without the async iteration a stream needs.
   */
  all(): Promise<Envelope[]> {
    this.collecting = true;
    // Paused by messages that came before anyone asked: nothing will take them before the end.
    if (this.paused) {
      this.paused = false;
      this.source.resume();
    }
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.ended) return Promise.resolve(this.takeAll());
    return new Promise((resolve, reject) => {
      this.resolveAll = resolve;
      this.rejectAll = reject;
    });
  }

  /** Every envelope queued, given back to the budget. */
  private takeAll(): Envelope[] {
    const out = this.queue.splice(0);
    this.queuedBytes = 0;
    this.settle();
    return out;
  }

  [Symbol.asyncIterator](): AsyncIterator<Envelope> {
    return {
      next: async () => {
        for (;;) {
          const envelope = this.queue.shift();
          if (envelope !== undefined) {
            this.taken(envelope);
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
    this.detach();
    this.options.idle.unwatch(this);
    this.options.budget.give(this.charged);
    this.charged = 0;
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.reader.clear();
  }

  /** Takes the body off its source: its listeners, and the source's reference to it. */
  private detach(): void {
    const source = this.source as BodySource;
    if (source[bodyOf] !== this) return;
    source[bodyOf] = undefined;
    source.off("data", onSourceData);
    source.off("end", onSourceEnd);
  }

  /** A chunk of the body (see `onSourceData`). */
  received(chunk: Buffer): void {
    try {
      const queued = this.queue.length;
      // Straight onto the queue (a failure empties it).
      this.reader.push(chunk, this.queue);
      this.countQueued(queued);
      // Over the budget: the call fails, and what the body holds is dropped.
      this.settle();
      if (this.queue.length > 4 && !this.paused && !this.collecting) {
        this.paused = true;
        this.source.pause();
      }
      this.lastActivity = performance.now();
      this.signal();
      if (!this.kept && (this.reader.byteLength > 0 || this.queue.length > 0)) {
        this.kept = true;
        if (keeping.push(this) === 1) setImmediate(ownKept);
      }
    } catch (err) {
      this.fail(err);
    }
  }

  /** Copies what it holds out of the larger buffers its chunks are views of (see `owned-bytes.ts`). */
  own(): void {
    this.kept = false;
    if (this.failure !== undefined) return;
    this.reader.own();
    const queue = this.queue;
    for (let i = 0; i < queue.length; i++) {
      const envelope = queue[i] as Envelope;
      envelope.data = owned(envelope.data);
    }
  }

  /** The end of the body (see `onSourceEnd`). */
  sourceEnded(): void {
    this.options.idle.unwatch(this);
    // Nothing of the call may stay on the stream, which outlives it until the client has its
    // trailers: the call's state would be kept alive with it.
    this.detach();
    if (!this.reader.complete) {
      this.fail(new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument));
      return;
    }
    if (this.reader.end !== undefined) {
      try {
        const queued = this.queue.length;
        this.reader.end(this.queue);
        this.countQueued(queued);
        this.settle();
      } catch (err) {
        this.fail(err);
        return;
      }
    }
    this.ended = true;
    this.signal();
  }

  /** The call ended (see `Call.onAbort`): a body still being read fails with why. */
  callEnded(reason: unknown): void {
    if (this.ended) return;
    this.fail(
      reason ?? new ConnectError("the call ended before its request was read", Code.Canceled),
    );
  }

  /** Adds the payload bytes of the envelopes queued from `from` on to `queuedBytes`. */
  private countQueued(from: number): void {
    for (let i = from; i < this.queue.length; i++) {
      this.queuedBytes += (this.queue[i] as Envelope).data.length;
    }
  }

  /**
   * Charges the budget for what the body holds now — the reader's bytes, the queued messages', and
   * `pieceCost` for each of their pieces — taking or giving back the difference; throws
   * RESOURCE_EXHAUSTED (nothing taken) when that would pass the connection's or the process's.
   */
  private settle(): void {
    const holding =
      this.reader.byteLength +
      this.queuedBytes +
      pieceCost * (this.reader.pieces + this.queue.length);
    const more = holding - this.charged;
    if (more > 0) this.options.budget.take(more);
    else if (more < 0) this.options.budget.give(-more);
    this.charged = holding;
  }

  /** The consumer took `envelope`: its bytes given back, the source resumed once it keeps up. */
  private taken(envelope: Envelope): void {
    this.queuedBytes -= envelope.data.length;
    this.settle();
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
    const resolve = this.resolveAll;
    if (resolve !== undefined) {
      if (this.failure !== undefined) this.rejectAll?.(this.failure);
      else if (this.ended) resolve(this.takeAll());
      else return;
      this.resolveAll = undefined;
      this.rejectAll = undefined;
      return;
    }
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
