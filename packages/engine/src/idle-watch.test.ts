import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { IdleWatch, type Watched } from "./idle-watch.ts";
import type { Linked } from "./linked-list.ts";

class Item implements Watched {
  lastActivity = performance.now();
  linkPrevious: Linked | null = null;
  linkNext: Linked | null = null;
  stalled: number[] = [];
  stall(ms: number): void {
    this.stalled.push(ms);
  }
}

describe("IdleWatch (and the linked list under it)", () => {
  it("keeps count as items enter and leave from the front, the middle and the back, once each", () => {
    const watch = new IdleWatch(1000);
    const [a, b, c, d] = [new Item(), new Item(), new Item(), new Item()];
    for (const item of [a, b, c, d]) watch.watch(item);
    watch.watch(b); // twice: still one
    assert.equal(watch.size, 4);
    watch.unwatch(c); // middle
    watch.unwatch(d); // the front (the last watched)
    watch.unwatch(a); // the back
    watch.unwatch(a); // again: nothing
    assert.equal(watch.size, 1);
    assert.equal(b.linkPrevious, null);
    assert.equal(b.linkNext, null);
    watch.unwatch(b);
    assert.equal(watch.size, 0);
    // Watched again after leaving.
    watch.watch(c);
    watch.watch(a);
    assert.equal(watch.size, 2);
    watch.unwatch(c);
    watch.unwatch(a);
    assert.equal(watch.size, 0);
  });

  it("stalls only what went quiet, once, and takes it off the watch", async () => {
    const watch = new IdleWatch(40);
    const quiet = new Item();
    const busy = new Item();
    const done = new Item();
    for (const item of [quiet, busy, done]) watch.watch(item);
    watch.unwatch(done);
    const feeding = setInterval(() => {
      busy.lastActivity = performance.now();
    }, 5);
    while (quiet.stalled.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    clearInterval(feeding);
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.deepEqual(quiet.stalled, [40]);
    assert.deepEqual(busy.stalled, [], "an item that kept making progress stalled");
    assert.deepEqual(done.stalled, []);
    assert.equal(watch.size, 1);
    watch.unwatch(busy);
  });

  it("watches nothing with a timeout of 0", () => {
    const watch = new IdleWatch(0);
    watch.watch(new Item());
    assert.equal(watch.size, 0);
  });
});
