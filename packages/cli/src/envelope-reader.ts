/** gRPC-Web's trailers frame and Connect's end-of-stream message: flags that mark the last frame. */
const lastFrameFlags = 0x80 | 0x02;

/**
 * Reads the length-prefixed frames (a flags byte, a 4-byte big-endian length, the payload) of a
 * gRPC, gRPC-Web or Connect streaming body as its chunks arrive. Messages are only counted;
 * the payload of the last frame (gRPC-Web trailers, Connect's end of stream) is kept.
 */
export class EnvelopeReader {
  /** Messages read since the last reset. */
  messages = 0;
  /** The payload of the last frame, once it has been read. */
  last: Buffer | undefined;
  #prefixRead = 0;
  #flags = 0;
  #remaining = 0;
  #kept: Buffer[] | undefined;

  /** Reads the next chunk of the body. */
  push(chunk: Buffer): void {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.#prefixRead < 5) {
        const byte = chunk[i++] as number;
        if (this.#prefixRead === 0) {
          this.#flags = byte;
          this.#remaining = 0;
        } else {
          this.#remaining = this.#remaining * 256 + byte;
        }
        if (++this.#prefixRead === 5) {
          if ((this.#flags & lastFrameFlags) !== 0) this.#kept = [];
          if (this.#remaining === 0) this.#complete();
        }
        continue;
      }
      const take = Math.min(this.#remaining, n - i);
      this.#kept?.push(chunk.subarray(i, i + take));
      i += take;
      this.#remaining -= take;
      if (this.#remaining === 0) this.#complete();
    }
  }

  /** Forgets everything, for the next body. */
  reset(): void {
    this.messages = 0;
    this.last = undefined;
    this.#prefixRead = 0;
    this.#kept = undefined;
  }

  #complete(): void {
    if (this.#kept === undefined) {
      this.messages++;
    } else {
      this.last = Buffer.concat(this.#kept);
      this.#kept = undefined;
    }
    this.#prefixRead = 0;
  }
}

/** `payload` in a frame with the given flags. */
export function envelope(flags: number, payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + payload.length);
  frame[0] = flags;
  frame.writeUInt32BE(payload.length, 1);
  frame.set(payload, 5);
  return frame;
}
