import { StoreError } from "./store-error.ts";

/**
 * A bounded, single-reader queue of live events. A subscriber that falls `bufferSize` events
 * behind is cut off: the iteration rejects with a StoreError of kind `overflow` instead of letting
 * the server's memory grow. The reader can resume from what it saw last (for example with
 * StreamUserActivities' `since`).
 */
export class Subscription<T> implements AsyncIterable<T> {
  private readonly buffer: T[] = [];
  private head = 0;
  private waiter: ((result: IteratorResult<T>) => void) | undefined;
  private failer: ((reason: unknown) => void) | undefined;
  private ended = false;
  private failure: unknown;
  private readonly bufferSize: number;
  private readonly onClose: (() => void) | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort = () => this.close();

  constructor(options: { bufferSize?: number; signal?: AbortSignal; onClose?: () => void }) {
    this.bufferSize = options.bufferSize ?? 1024;
    this.onClose = options.onClose;
    this.signal = options.signal;
    if (this.signal?.aborted) {
      this.ended = true;
      queueMicrotask(() => this.closed());
    } else {
      this.signal?.addEventListener("abort", this.onAbort, { once: true });
    }
  }

  /** Delivers an event; called by the event bus. */
  push(value: T): void {
    if (this.ended) return;
    if (this.waiter !== undefined) {
      const resolve = this.waiter;
      this.waiter = undefined;
      this.failer = undefined;
      resolve({ value, done: false });
      return;
    }
    if (this.buffer.length - this.head >= this.bufferSize) {
      this.fail(
        new StoreError(
          "overflow",
          `subscriber fell more than ${this.bufferSize} events behind and was disconnected`,
        ),
      );
      return;
    }
    this.buffer.push(value);
  }

  /** Ends the subscription with an error that the reader sees at its next read; buffered events are dropped. */
  fail(reason: unknown): void {
    if (this.ended) return;
    this.failure = reason;
    this.buffer.length = this.head = 0;
    this.finish();
  }

  /** Ends the subscription; the reader's iteration completes. */
  close(): void {
    if (this.ended) return;
    this.finish();
  }

  get isClosed(): boolean {
    return this.ended;
  }

  /** Runs once when the subscription ends, however it ends. */
  protected closed(): void {
    this.onClose?.();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.head < this.buffer.length) {
      const value = this.buffer[this.head++] as T;
      if (this.head === this.buffer.length) this.buffer.length = this.head = 0;
      return Promise.resolve({ value, done: false });
    }
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.failer = reject;
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  private finish(): void {
    this.ended = true;
    this.signal?.removeEventListener("abort", this.onAbort);
    this.closed();
    const resolve = this.waiter;
    const reject = this.failer;
    this.waiter = this.failer = undefined;
    if (this.failure !== undefined) reject?.(this.failure);
    else resolve?.({ value: undefined, done: true });
  }
}
