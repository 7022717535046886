/**
 * Request bytes a body keeps, in memory of their own. Node's HTTP/2 hands each DATA frame as a
 * view of the whole socket read it came in (up to 64 KiB), and HTTP/1.1 a chunked body's pieces as
 * views of theirs: a chunk kept for later keeps all of it, whatever the budget counted (16 KiB
 * kept 64; a 1-byte frame, 64 KiB). So what a body still holds once the reads of an event-loop
 * turn are done is copied (see `RequestBody`).
 */

/** Pieces smaller than this are copied again with the next ones: a trickle makes one per 4 KiB. */
const coalesceBelow = 4096;

/** Whether `bytes` is all of its memory: keeping it keeps no more than it shows. */
export function isWhole(bytes: Uint8Array): boolean {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
}

/**
 * Makes the chunks from `from` on (those before were done already) memory of their own, as one
 * buffer, together with the piece before them when it is small; `offset` bytes of `chunks[0]` are
 * done with and left out. Chunks already whole and not small are left as they are. Returns the
 * first chunk's offset afterwards.
 */
export function ownTail(chunks: Buffer[], offset: number, from: number): number {
  let needed = false;
  for (let i = from; i < chunks.length; i++) {
    const chunk = chunks[i] as Buffer;
    if (!isWhole(chunk) || chunk.length < coalesceBelow) {
      needed = true;
      break;
    }
  }
  if (!needed) return offset;
  let first = from;
  if (first > 0 && (chunks[first - 1] as Buffer).length < coalesceBelow) first--;
  const skip = first === 0 ? offset : 0;
  let n = -skip;
  for (let i = first; i < chunks.length; i++) n += (chunks[i] as Buffer).length;
  // Not from Buffer's shared pool: a small copy would be a view of its 8 KiB.
  const out = Buffer.allocUnsafeSlow(n);
  let at = 0;
  for (let i = first; i < chunks.length; i++) {
    const chunk = chunks[i] as Buffer;
    const start = i === first ? skip : 0;
    chunk.copy(out, at, start);
    at += chunk.length - start;
  }
  chunks.length = first;
  chunks.push(out);
  return first === 0 ? 0 : offset;
}

/** `bytes`, or a copy in memory of its own when it is a view of more. */
export function owned(bytes: Uint8Array): Uint8Array {
  if (isWhole(bytes)) return bytes;
  const out = Buffer.allocUnsafeSlow(bytes.byteLength);
  out.set(bytes);
  return out;
}
