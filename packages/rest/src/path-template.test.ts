import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compareTemplates, matchPathTemplate, parsePathTemplate } from "./path-template.ts";

function match(template: string, path: string): Record<string, string> | undefined {
  const values = matchPathTemplate(parsePathTemplate(template), path);
  return values === undefined ? undefined : Object.fromEntries(values);
}

describe("parsePathTemplate", () => {
  it("parses literals, variables and a verb", () => {
    const t = parsePathTemplate("/api/v1/orders/{order_id}:pay");
    assert.deepEqual(t.segments, [
      { kind: "literal", value: "api" },
      { kind: "literal", value: "v1" },
      { kind: "literal", value: "orders" },
      { kind: "wildcard" },
    ]);
    assert.deepEqual(t.variables, [{ fieldPath: ["order_id"], start: 3, end: 4 }]);
    assert.equal(t.verb, "pay");
  });

  it("parses variables with nested field paths and segments of their own", () => {
    const t = parsePathTemplate("/v1/{book.name=shelves/*/books/*}");
    assert.deepEqual(t.variables, [{ fieldPath: ["book", "name"], start: 1, end: 5 }]);
    assert.deepEqual(t.segments.slice(1), [
      { kind: "literal", value: "shelves" },
      { kind: "wildcard" },
      { kind: "literal", value: "books" },
      { kind: "wildcard" },
    ]);
    assert.equal(t.verb, undefined);
  });

  it("parses {field=*}, {a.b=**}, and bare * and ** segments", () => {
    assert.deepEqual(parsePathTemplate("/v1/{id=*}").variables, [
      { fieldPath: ["id"], start: 1, end: 2 },
    ]);
    const deep = parsePathTemplate("/v1/{a.b=**}");
    assert.deepEqual(deep.segments[1], { kind: "deep-wildcard" });
    assert.deepEqual(deep.variables, [{ fieldPath: ["a", "b"], start: 1, end: 2 }]);
    const bare = parsePathTemplate("/v1/*/x/**:watch");
    assert.deepEqual(
      bare.segments.map((s) => s.kind),
      ["literal", "wildcard", "literal", "deep-wildcard"],
    );
    assert.equal(bare.variables.length, 0);
    assert.equal(bare.verb, "watch");
  });

  it("refuses what the grammar does not allow, saying where", () => {
    for (const [template, problem] of [
      ["v1/users", /starts with "\/"/],
      ["/v1/**/users", /"\*\*" must be the last segment/],
      ["/v1/{a={b}}", /variables cannot nest/],
      ["/v1/{a}/{a}", /a appears twice/],
      ["/v1/{a-b}", /expected a field path/],
      ["/v1/{a=x", /expected "}"/],
      ["/v1//x", /expected a segment/],
      ["/v1/x:", /expected a segment/],
      ["/v1/x:a/b", /unexpected character/],
      ["/v1/{name", /unclosed variable/],
    ] as const) {
      assert.throws(() => parsePathTemplate(template), problem, template);
    }
  });
});

describe("matchPathTemplate", () => {
  it("matches literals and single-segment variables", () => {
    assert.deepEqual(match("/api/v1/users/{user_id}", "/api/v1/users/42"), { user_id: "42" });
    assert.equal(match("/api/v1/users/{user_id}", "/api/v1/users"), undefined);
    assert.equal(match("/api/v1/users/{user_id}", "/api/v1/users/42/orders"), undefined);
    assert.equal(match("/api/v1/users/{user_id}", "/api/v1/users/"), undefined);
    assert.equal(match("/api/v1/users/{user_id}", "/api/v2/users/42"), undefined);
    assert.deepEqual(match("/api/v1/users", "/api/v1/users"), {});
  });

  it("matches variables spanning several segments, nested fields included", () => {
    assert.deepEqual(match("/v1/{book.name=shelves/*/books/*}", "/v1/shelves/1/books/moby-dick"), {
      "book.name": "shelves/1/books/moby-dick",
    });
    assert.equal(match("/v1/{book.name=shelves/*/books/*}", "/v1/shelves/1/cds/2"), undefined);
    assert.deepEqual(match("/v1/{parent=shelves/*}/books", "/v1/shelves/7/books"), {
      parent: "shelves/7",
    });
  });

  it("matches ** against any number of segments, none included", () => {
    assert.deepEqual(match("/v1/files/{path=**}", "/v1/files/a/b/c.txt"), { path: "a/b/c.txt" });
    assert.deepEqual(match("/v1/files/{path=**}", "/v1/files/a"), { path: "a" });
    assert.deepEqual(match("/v1/files/{path=**}", "/v1/files"), { path: "" });
    assert.deepEqual(match("/v1/{name=files/**}", "/v1/files/x/y"), { name: "files/x/y" });
    assert.deepEqual(match("/v1/*/x", "/v1/anything/x"), {});
  });

  it("matches a custom verb only at the end of the path", () => {
    const pay = "/api/v1/orders/{order_id}:pay";
    assert.deepEqual(match(pay, "/api/v1/orders/9:pay"), { order_id: "9" });
    assert.equal(match(pay, "/api/v1/orders/9:cancel"), undefined);
    assert.equal(match(pay, "/api/v1/orders/9"), undefined);
    assert.deepEqual(match("/v1/{name=**}:watch", "/v1/a/b:watch"), { name: "a/b" });
    // Without a verb in the template, a colon is part of the segment.
    assert.deepEqual(match("/api/v1/orders/{order_id}", "/api/v1/orders/9:pay"), {
      order_id: "9:pay",
    });
  });

  it("percent-decodes values, keeping %2F in multi-segment ones", () => {
    assert.deepEqual(match("/v1/users/{id}", "/v1/users/a%2Fb%20c%C3%A9"), { id: "a/b cé" });
    assert.deepEqual(match("/v1/{name=**}", "/v1/a%2Fb/c%20d"), { name: "a%2Fb/c d" });
    assert.deepEqual(match("/v1/users/{id}", "/v1/us%65rs/1"), { id: "1" });
    assert.equal(match("/v1/users/{id}", "/v1/users/%E0%A4%A"), undefined);
  });
});

describe("compareTemplates", () => {
  it("puts literals before variables, and verbs first", () => {
    const sorted = [
      "/v1/{name=**}",
      "/v1/users/{id}",
      "/v1/users/{id}:pay",
      "/v1/users/me",
      "/v1/{a}/{b}",
    ]
      .map(parsePathTemplate)
      .sort(compareTemplates)
      .map((t) => t.source);
    assert.deepEqual(sorted, [
      "/v1/users/me",
      "/v1/users/{id}:pay",
      "/v1/users/{id}",
      "/v1/{a}/{b}",
      "/v1/{name=**}",
    ]);
  });
});
