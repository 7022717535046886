/** What a `LinkedList` links: its neighbours, null when in no list (written by the list only). */
export interface Linked {
  linkPrevious: Linked | null;
  linkNext: Linked | null;
}

/**
 * A list of objects linked through themselves, for what every call enters and leaves (the calls
 * in flight, the request bodies watched for stalls): adding and removing allocate nothing, where
 * a long-lived `Set` reallocates its table as it grows, shrinks and fills with deleted entries,
 * and what it allocates lives (and is copied to the old generation) as long as the set. An object
 * is in one list at most.
 */
export class LinkedList<T extends Linked> {
  private first: T | null = null;
  private count = 0;

  get size(): number {
    return this.count;
  }

  has(item: T): boolean {
    return item.linkPrevious !== null || this.first === item;
  }

  /** Adds `item` at the front; nothing when it is in already. */
  add(item: T): void {
    if (this.has(item)) return;
    item.linkPrevious = null;
    item.linkNext = this.first;
    if (this.first !== null) this.first.linkPrevious = item;
    this.first = item;
    this.count++;
  }

  /** Takes `item` out; nothing when it is not in. */
  delete(item: T): void {
    if (!this.has(item)) return;
    const previous = item.linkPrevious;
    const next = item.linkNext;
    if (previous === null) this.first = next as T | null;
    else previous.linkNext = next;
    if (next !== null) next.linkPrevious = previous;
    item.linkPrevious = null;
    item.linkNext = null;
    this.count--;
  }

  /** Calls `f` with every item, each taken before `f` runs: `f` may take it, or others, out. */
  forEach(f: (item: T) => void): void {
    let item = this.first;
    while (item !== null) {
      const next = item.linkNext as T | null;
      f(item);
      item = next;
    }
  }
}
