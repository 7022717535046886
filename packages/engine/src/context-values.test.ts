import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createContextKey, createContextValues } from "@connectrpc/connect";
import { createCallValues } from "./context-values.ts";

describe("createCallValues", () => {
  it("answers as connect's createContextValues does: defaults, set, chained, delete", () => {
    const count = createContextKey(7, { description: "count" });
    const name = createContextKey<string | undefined>(undefined);
    const unset = createContextKey("fallback");
    for (const values of [createContextValues(), createCallValues()]) {
      assert.equal(values.get(count), 7);
      assert.equal(values.set(count, 1).set(name, "a"), values);
      assert.equal(values.get(count), 1);
      assert.equal(values.get(name), "a");
      // A value set to undefined is a value, not the default.
      values.set(count, undefined as unknown as number);
      assert.equal(values.get(count), undefined);
      assert.equal(values.delete(count), values);
      assert.equal(values.get(count), 7);
      assert.equal(values.get(unset), "fallback");
      // Its own methods are no keys' values.
      assert.equal(values.get(createContextKey("d", { description: "get" })), "d");
    }
  });
});
