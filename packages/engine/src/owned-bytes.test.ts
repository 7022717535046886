import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isWhole, owned, ownTail } from "./owned-bytes.ts";

/** `n` bytes of value `fill` at offset 10 of a 64 KiB buffer: a view, as Node's HTTP/2 hands them. */
const view = (n: number, fill: number) => Buffer.alloc(64 * 1024, fill).subarray(10, 10 + n);
/** `n` bytes of value `fill` in memory of their own. */
const whole = (n: number, fill: number) => Buffer.allocUnsafeSlow(n).fill(fill);
const bytesOf = (chunks: Buffer[], offset: number) => [...Buffer.concat(chunks).subarray(offset)];

describe("ownTail", () => {
  it("copies the views from `from` on into one buffer of their own, leaving out the offset", () => {
    const chunks = [view(3, 1), view(2, 2)];
    const offset = ownTail(chunks, 1, 0);
    assert.equal(offset, 0);
    assert.equal(chunks.length, 1);
    assert.ok(isWhole(chunks[0] as Buffer));
    assert.deepEqual(bytesOf(chunks, offset), [1, 1, 2, 2]);
  });

  it("copies a view followed by a chunk that is whole (and small) in the same turn", () => {
    const chunks = [view(2, 1), whole(2, 2)];
    ownTail(chunks, 0, 0);
    assert.ok(chunks.every(isWhole));
    assert.deepEqual(bytesOf(chunks, 0), [1, 1, 2, 2]);
  });

  it("leaves large whole chunks as they are, and what came before `from`", () => {
    const big = whole(8192, 7);
    const chunks = [view(2, 1), big];
    assert.equal(ownTail(chunks, 1, 1), 1);
    assert.equal(chunks[1], big);
    assert.equal(chunks.length, 2);
  });

  it("merges a small piece made before with the new ones: a trickle makes few pieces", () => {
    const chunks: Buffer[] = [];
    let from = 0;
    for (let i = 0; i < 100; i++) {
      chunks.push(view(1, i));
      ownTail(chunks, 0, from);
      from = chunks.length;
    }
    assert.equal(chunks.length, 1);
    assert.deepEqual(
      bytesOf(chunks, 0),
      Array.from({ length: 100 }, (_, i) => i),
    );
  });

  it("keeps the first chunk's offset when it is not copied", () => {
    const chunks = [whole(8192, 1), view(2, 2)];
    assert.equal(ownTail(chunks, 100, 1), 100);
    assert.equal(chunks.length, 2);
    assert.ok(isWhole(chunks[1] as Buffer));
  });
});

describe("owned", () => {
  it("copies a view, and keeps what is whole", () => {
    const v = view(4, 9);
    const copy = owned(v);
    assert.ok(isWhole(copy));
    assert.deepEqual([...copy], [9, 9, 9, 9]);
    const w = whole(4, 9);
    assert.equal(owned(w), w);
  });
});
