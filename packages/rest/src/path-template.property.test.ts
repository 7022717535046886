import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OrderService } from "@keel/gen/order/v1/order_pb";
import { UserService } from "@keel/gen/user/v1/user_pb";
import fc from "fast-check";
import { collectHttpBindings } from "./http-rule.ts";
import { matchPathTemplate, parsePathTemplate } from "./path-template.ts";
import { RequestPath } from "./request-path.ts";
import { createRouteTable } from "./route-table.ts";
import { LibraryService } from "./testing/library.ts";

// Every template served: keel's own and the test library's (nested paths, `**`, verbs).
const bindings = collectHttpBindings([UserService, OrderService, LibraryService]);
const table = createRouteTable(bindings, "");

/** Paths as a client may send them: any text, raw bytes as Node hands them on, and near-misses. */
const anyPath = fc.oneof(
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes).toString("latin1")),
  fc
    .array(
      fc.oneof(
        fc.constantFrom("api", "v1", "users", "orders", "shelves", "books", "7", "", ":pay", "**"),
        fc.constantFrom("%", "%2", "%2F", "%2f", "%ZZ", "%E2%82", "%C0%AF", "%00", ":", "{", "}"),
        fc.string({ unit: "binary", maxLength: 8 }),
      ),
      { maxLength: 24 },
    )
    .map((segments) => `/${segments.join("/")}`),
);

describe("matchPathTemplate, on arbitrary paths", () => {
  it("never throws, and answers no match or a string per variable", () => {
    fc.assert(
      fc.property(anyPath, fc.constantFrom(...bindings), (path, binding) => {
        const values = matchPathTemplate(binding.template, path);
        if (values === undefined) return;
        assert.deepEqual(
          [...values.keys()].sort(),
          binding.template.variables.map((v) => v.fieldPath.join(".")).sort(),
        );
        for (const value of values.values()) assert.equal(typeof value, "string");
      }),
      { numRuns: 3000 },
    );
  });

  it("answers the same for a path split once and matched against every template", () => {
    fc.assert(
      fc.property(anyPath, (path) => {
        const shared = new RequestPath(path);
        for (const { template } of bindings) {
          const once = matchPathTemplate(template, shared);
          const alone = matchPathTemplate(template, path);
          assert.deepEqual(once && Object.fromEntries(once), alone && Object.fromEntries(alone));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("lets the route table answer every method and path without throwing", () => {
    fc.assert(
      fc.property(
        anyPath,
        fc.constantFrom("GET", "POST", "PATCH", "DELETE", "PUT", "get", "BREW"),
        (path, method) => {
          const found = table.find(method, path);
          if (found?.allowed !== undefined) assert.ok(found.allowed.length > 0);
          assert.equal(typeof table.covers(path), "boolean");
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("takes a long path, of many segments or of one, in one pass", () => {
    for (const path of [
      "/api/v1/users/".repeat(2000),
      `/v1/books/${"a/".repeat(8000)}b`,
      `/api/v1/users/${"%".repeat(16_000)}`,
      `/v1/shelves/1/books/${"%2F".repeat(5000)}`,
    ]) {
      for (const binding of bindings) matchPathTemplate(binding.template, path);
    }
  });
});

/** One segment of a generated template: a literal, `*`, or a variable over some of them. */
type Part =
  | { kind: "literal"; text: string }
  | { kind: "wildcard" }
  | { kind: "variable"; inner: ("literal" | "wildcard")[]; literals: string[] };

// Literals need no percent-encoding, as templates write them; they are never `*` or `**`.
const literal = fc.stringMatching(/^[a-z0-9][a-z0-9._~-]{0,6}$/);
const part: fc.Arbitrary<Part> = fc.oneof(
  literal.map((text) => ({ kind: "literal" as const, text })),
  fc.constant({ kind: "wildcard" as const }),
  fc
    .array(fc.constantFrom("literal" as const, "wildcard" as const), { minLength: 1, maxLength: 3 })
    .chain((inner) =>
      fc
        .array(literal, { minLength: inner.length, maxLength: inner.length })
        .map((literals) => ({ kind: "variable" as const, inner, literals })),
    ),
);
/** A template: its parts, maybe a last `**` (bare or as a variable), maybe a verb. */
const template = fc.record({
  parts: fc.array(part, { minLength: 1, maxLength: 5 }),
  deep: fc.constantFrom("none", "bare", "variable"),
  verb: fc.option(literal, { nil: undefined }),
});
/** What a wildcard stands for in a request: any well-formed text but the empty one. */
const segmentValue = fc.string({ unit: "grapheme", minLength: 1, maxLength: 12 });

describe("matchPathTemplate, on paths made from a template", () => {
  it("gives each variable back the value its segments were made from", () => {
    fc.assert(
      fc.property(
        template,
        fc.array(segmentValue, { minLength: 30, maxLength: 30 }),
        fc.array(segmentValue, { maxLength: 4 }),
        ({ parts, deep, verb }, values, deepValues) => {
          let source = "";
          let path = "";
          const expected = new Map<string, string>();
          let nextValue = 0;
          const take = () => values[nextValue++ % values.length] as string;
          parts.forEach((p, i) => {
            if (p.kind === "literal") {
              source += `/${p.text}`;
              path += `/${p.text}`;
            } else if (p.kind === "wildcard") {
              source += "/*";
              path += `/${encodeURIComponent(take())}`;
            } else {
              const pieces = p.inner.map((k, j) => (k === "literal" ? p.literals[j] : take()));
              source += `/{f${i}=${p.inner.map((k, j) => (k === "literal" ? p.literals[j] : "*")).join("/")}}`;
              path += `/${pieces.map((piece) => encodeURIComponent(piece as string)).join("/")}`;
              // One segment: decoded whole. Several: each decoded, a `/` inside one kept as %2F.
              expected.set(
                `f${i}`,
                pieces.length === 1
                  ? (pieces[0] as string)
                  : pieces.map((piece) => (piece as string).replaceAll("/", "%2F")).join("/"),
              );
            }
          });
          if (deep !== "none") {
            source += deep === "bare" ? "/**" : "/{rest=**}";
            if (deepValues.length > 0) {
              path += `/${deepValues.map((v) => encodeURIComponent(v)).join("/")}`;
            }
            if (deep === "variable") {
              expected.set("rest", deepValues.map((v) => v.replaceAll("/", "%2F")).join("/"));
            }
          }
          if (verb !== undefined) {
            source += `:${verb}`;
            path += `:${verb}`;
          }
          const parsed = parsePathTemplate(source);
          const got = matchPathTemplate(parsed, path);
          assert.ok(got !== undefined, `${path} should match ${source}`);
          assert.deepEqual(Object.fromEntries(got), Object.fromEntries(expected));
          // Another first literal, or a segment more without `**`, does not match.
          if (parts[0]?.kind === "literal") {
            assert.equal(matchPathTemplate(parsed, `/x${path.slice(1)}`), undefined);
          }
          if (deep === "none" && verb === undefined) {
            assert.equal(matchPathTemplate(parsed, `${path}/extra`), undefined);
          }
        },
      ),
      { numRuns: 1500 },
    );
  });
});
