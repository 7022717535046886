import { Code, ConnectError } from "@connectrpc/connect";
import { ownTail } from "./owned-bytes.ts";

const empty = Buffer.alloc(0);

/** One length-prefixed message: its flags byte and its payload. */
export interface Envelope {
  flags: number;
  data: Uint8Array;
}

/** What splits a request body into messages as its chunks arrive (see `RequestBody`). */
export interface BodyReader {
  /** Takes a chunk of the body; appends every message it completes to `out`; throws on bad input. */
  push(chunk: Buffer, out: Envelope[]): void;
  /** Bytes received and not yet handed on. */
  readonly byteLength: number;
  /** Whether the body may end here. */
  readonly complete: boolean;
  /** The body has ended: appends what only its end completes to `out`. */
  end?(out: Envelope[]): void;
  /** The pieces (chunks) it holds, each counted at a fixed cost besides its bytes. */
  readonly pieces: number;
  /** Copies what it holds out of larger buffers (see `owned-bytes.ts`). */
  own(): void;
  /** Drops everything it holds (the body was stopped or failed). */
  clear(): void;
}

/**
 * Splits a request body into envelopes (a flags byte, a 4-byte big-endian length, the payload)
 * synchronously, as the body's chunks arrive. A prefix that declares more than `readMaxBytes` is
 * refused at once, before any of its payload is buffered, with connect's error. A payload that
 * sits whole in one chunk is handed on as a view of it, not a copy.
 */
export class EnvelopeReader implements BodyReader {
  private readonly pending: Buffer[] = [];
  /** Where the bytes not yet taken start in `pending[0]` (a view of the rest would cost one). */
  private offset = 0;
  private held = 0;
  /** The payload length of the envelope whose prefix was read; -1 while waiting for a prefix. */
  private need = -1;
  private flags = 0;
  /** How many of `pending`'s first chunks are in memory of their own (see `own`). */
  private ownedCount = 0;

  private readonly readMaxBytes: number;

  constructor(readMaxBytes: number) {
    this.readMaxBytes = readMaxBytes;
  }

  /** Bytes received and not yet handed on as an envelope. */
  get byteLength(): number {
    return this.held;
  }

  /** Takes a chunk of the body; appends every envelope it completes to `out`. */
  push(chunk: Buffer, out: Envelope[]): void {
    if (chunk.length === 0) return;
    this.pending.push(chunk);
    this.held += chunk.length;
    for (;;) {
      if (this.need < 0) {
        if (this.held < 5) return;
        const first = this.pending[0] as Buffer;
        let length: number;
        if (first.length - this.offset >= 5) {
          // The prefix read where it lies: no view, no copy.
          this.flags = first[this.offset] as number;
          length = first.readUInt32BE(this.offset + 1);
          this.skip(5);
        } else {
          const prefix = this.take(5);
          this.flags = prefix[0] as number;
          length = prefix.readUInt32BE(1);
        }
        if (length > this.readMaxBytes) {
          throw new ConnectError(
            `message size ${length} is larger than configured readMaxBytes ${this.readMaxBytes}`,
            Code.ResourceExhausted,
          );
        }
        this.need = length;
      }
      if (this.held < this.need) return;
      out.push({ flags: this.flags, data: this.take(this.need) });
      this.need = -1;
    }
  }

  get pieces(): number {
    return this.pending.length;
  }

  own(): void {
    this.offset = ownTail(this.pending, this.offset, this.ownedCount);
    this.ownedCount = this.pending.length;
  }

  clear(): void {
    this.pending.length = 0;
    this.offset = 0;
    this.held = 0;
    this.need = -1;
    this.ownedCount = 0;
  }

  /** Drops `pending[0]`, done with. */
  private shift(): void {
    this.pending.shift();
    this.offset = 0;
    if (this.ownedCount > 0) this.ownedCount--;
  }

  /** Whether the body may end here: no envelope is half received. */
  get complete(): boolean {
    return this.held === 0 && this.need < 0;
  }

  /** Drops the first `n` bytes held, which lie in `pending[0]`. */
  private skip(n: number): void {
    this.held -= n;
    this.offset += n;
    if (this.offset === (this.pending[0] as Buffer).length) this.shift();
  }

  /** The first `n` bytes held (n <= held), as a view when they lie in one chunk. */
  private take(n: number): Buffer {
    if (n === 0) return empty;
    const first = this.pending[0] as Buffer;
    const start = this.offset;
    if (first.length - start >= n) {
      const view = first.subarray(start, start + n);
      this.skip(n);
      return view;
    }
    this.held -= n;
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const head = this.pending[0] as Buffer;
      const part = Math.min(head.length - this.offset, n - at);
      head.copy(out, at, this.offset, this.offset + part);
      at += part;
      this.offset += part;
      if (this.offset === head.length) this.shift();
    }
    return out;
  }
}
