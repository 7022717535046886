import { create, type DescMessage, type MessageInitShape, toBinary } from "@bufbuild/protobuf";

/**
 * One gRPC length-prefixed message: a flag byte (0: not compressed), the length as 4 bytes big
 * endian, then the protobuf bytes. This is the body h2load posts for a unary call.
 */
export function grpcFrame<Desc extends DescMessage>(
  schema: Desc,
  init: MessageInitShape<Desc>,
): Buffer {
  const message = toBinary(schema, create(schema, init));
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/**
 * Counts the gRPC messages in a stream of DATA chunks, whatever their boundaries: a message may
 * be split across chunks and a chunk may hold several messages.
 */
export class GrpcMessageCounter {
  /** Messages seen so far. */
  count = 0;
  // Bytes still to skip of the message being read, or -1 while reading its 5-byte prefix.
  private remaining = -1;
  private readonly prefix = Buffer.alloc(5);
  private prefixFilled = 0;

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
      }
      const skip = Math.min(this.remaining, chunk.length - offset);
      offset += skip;
      this.remaining -= skip;
      if (this.remaining === 0) {
        this.count++;
        this.remaining = -1;
      }
    }
    return this.count - before;
  }
}
