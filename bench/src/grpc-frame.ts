import { create, type DescMessage, type MessageInitShape, toBinary } from "@bufbuild/protobuf";

/**
 * One gRPC length-prefixed message: a flag byte (0: not compressed), the length as 4 bytes big
 * endian, then the protobuf bytes. This is the body h2load posts for a unary call.
 */
export function grpcFrame<Desc extends DescMessage>(
  schema: Desc,
  init: MessageInitShape<Desc>,
): Buffer {
  return lengthPrefixed(toBinary(schema, create(schema, init)));
}

/** Serialized message bytes as one gRPC length-prefixed message (see `grpcFrame`). */
export function lengthPrefixed(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/**
 * Counts the gRPC (or Connect streaming) messages in a stream of DATA chunks, whatever their
 * boundaries: a message may be split across chunks and a chunk may hold several messages. A
 * Connect end-of-stream message (flag 0x02, its JSON status) is not counted: its bytes are kept in
 * `endOfStream`.
 */
export class GrpcMessageCounter {
  /** Messages seen so far. */
  count = 0;
  /** The end-of-stream message's bytes, once it was read whole (Connect streaming only). */
  endOfStream: Buffer | undefined;
  // Bytes still to read of the message being read, or -1 while reading its 5-byte prefix.
  private remaining = -1;
  private readonly prefix = Buffer.alloc(5);
  private prefixFilled = 0;
  // The end-of-stream message's parts so far; undefined while reading any other message.
  private endParts: Uint8Array[] | undefined;

  /** Feeds one chunk; returns how many messages it completed. */
  push(chunk: Uint8Array): number {
    const before = this.count;
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining < 0) {
        const take = Math.min(5 - this.prefixFilled, chunk.length - offset);
        this.prefix.set(chunk.subarray(offset, offset + take), this.prefixFilled);
        this.prefixFilled += take;
        offset += take;
        if (this.prefixFilled < 5) break;
        this.prefixFilled = 0;
        this.remaining = this.prefix.readUInt32BE(1);
        this.endParts = (this.prefix[0] as number) & endStreamFlag ? [] : undefined;
      }
      const take = Math.min(this.remaining, chunk.length - offset);
      this.endParts?.push(chunk.subarray(offset, offset + take));
      offset += take;
      this.remaining -= take;
      if (this.remaining === 0) {
        if (this.endParts === undefined) this.count++;
        else this.endOfStream = Buffer.concat(this.endParts);
        this.remaining = -1;
      }
    }
    return this.count - before;
  }
}

/** The flag of Connect's end-of-stream message. */
const endStreamFlag = 0x02;
