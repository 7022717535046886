import type { ContextKey, ContextValues } from "@connectrpc/connect";

/**
 * connect's `ContextValues`, its methods on a prototype: connect's `createContextValues` makes an
 * object literal with three methods, three closures more for every call. The values are kept as
 * connect keeps them, under each key's symbol.
 */
class CallValues implements ContextValues {
  get<T>(key: ContextKey<T>): T {
    return key.id in this ? ((this as Record<symbol, unknown>)[key.id] as T) : key.defaultValue;
  }

  set<T>(key: ContextKey<T>, value: T): this {
    (this as Record<symbol, unknown>)[key.id] = value;
    return this;
  }

  delete(key: ContextKey<unknown>): this {
    delete (this as Record<symbol, unknown>)[key.id];
    return this;
  }
}

/** New, empty context values of a call, as connect's `createContextValues` makes them. */
export function createCallValues(): ContextValues {
  return new CallValues();
}
