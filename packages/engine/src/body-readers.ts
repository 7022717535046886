import { Code, ConnectError } from "@connectrpc/connect";
import { type BodyReader, type Envelope, EnvelopeReader } from "./envelope-reader.ts";
import { ownTail } from "./owned-bytes.ts";

/**
 * A body that is one message, not enveloped (a Connect unary request): held until the body ends,
 * within `readMaxBytes`, and against its `content-length` when it declares one, with connect's
 * errors. A declared length above the limit is refused before any byte is read.
 */
export class WholeBodyReader implements BodyReader {
  private readonly chunks: Buffer[] = [];
  private held = 0;
  private readonly readMaxBytes: number;
  private readonly promised: number | undefined;
  private readonly flags: number;
  private readonly tooLarge: ((readMaxBytes: number) => ConnectError) | undefined;
  /** How many of `chunks`' first are in memory of their own (see `own`). */
  private ownedCount = 0;
  readonly complete = true;

  /**
   * @param flags what the message's envelope flags say (compressed: the body is).
   * @param tooLarge the error for a body over `readMaxBytes`; default connect's.
   */
  constructor(
    readMaxBytes: number,
    contentLength: string | undefined,
    flags: number,
    tooLarge?: (readMaxBytes: number) => ConnectError,
  ) {
    this.readMaxBytes = readMaxBytes;
    this.flags = flags;
    this.tooLarge = tooLarge;
    const n = contentLength === undefined ? Number.NaN : Number.parseInt(contentLength, 10);
    this.promised = Number.isSafeInteger(n) && n >= 0 ? n : undefined;
    if (this.promised !== undefined && this.promised > readMaxBytes) {
      throw this.exceeded(`message size ${this.promised} is larger`);
    }
  }

  private exceeded(what: string): ConnectError {
    return (
      this.tooLarge?.(this.readMaxBytes) ??
      new ConnectError(
        `${what} than configured readMaxBytes ${this.readMaxBytes}`,
        Code.ResourceExhausted,
      )
    );
  }

  get byteLength(): number {
    return this.held;
  }

  push(chunk: Buffer): void {
    this.held += chunk.length;
    if (this.promised !== undefined && this.held > this.promised) {
      throw new ConnectError(
        `protocol error: promised ${this.promised} bytes, received ${this.held}`,
        Code.InvalidArgument,
      );
    }
    if (this.held > this.readMaxBytes) throw this.exceeded("message size is larger");
    this.chunks.push(chunk);
  }

  get pieces(): number {
    return this.chunks.length;
  }

  own(): void {
    ownTail(this.chunks, 0, this.ownedCount);
    this.ownedCount = this.chunks.length;
  }

  clear(): void {
    this.chunks.length = 0;
    this.held = 0;
    this.ownedCount = 0;
  }

  end(out: Envelope[]): void {
    if (this.promised !== undefined && this.held < this.promised) {
      throw new ConnectError(
        `protocol error: promised ${this.promised} bytes, received ${this.held}`,
        Code.InvalidArgument,
      );
    }
    const data = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    this.clear();
    out.push({ flags: this.flags, data });
  }
}

const base64Text = /^[A-Za-z0-9+/=]*$/;

/**
 * A gRPC-Web text body (`application/grpc-web-text`): envelopes in base64, decoded as the chunks
 * arrive, four characters at a time. Padded segments may follow one another (a client may encode
 * each message apart); anything that is not base64 is refused.
 */
export class Base64EnvelopeReader implements BodyReader {
  private readonly inner: EnvelopeReader;
  /** Characters of an incomplete group of four, from the end of the last chunk. */
  private rest = "";

  constructor(readMaxBytes: number) {
    this.inner = new EnvelopeReader(readMaxBytes);
  }

  get byteLength(): number {
    return this.inner.byteLength + this.rest.length;
  }

  get complete(): boolean {
    return this.rest.length === 0 && this.inner.complete;
  }

  get pieces(): number {
    return this.inner.pieces;
  }

  own(): void {
    this.inner.own();
  }

  clear(): void {
    this.inner.clear();
    this.rest = "";
  }

  push(chunk: Buffer, out: Envelope[]): void {
    const text = this.rest + chunk.toString("latin1");
    if (!base64Text.test(text)) {
      throw new ConnectError(
        "protocol error: a grpc-web-text body must be base64",
        Code.InvalidArgument,
      );
    }
    const whole = text.length - (text.length % 4);
    this.rest = text.slice(whole);
    let start = 0;
    while (start < whole) {
      // A group with padding ends a segment: decode up to it, and go on after it.
      const pad = text.indexOf("=", start);
      const stop = pad === -1 || pad >= whole ? whole : pad - (pad % 4) + 4;
      this.inner.push(Buffer.from(text.slice(start, stop), "base64"), out);
      start = stop;
    }
  }
}
