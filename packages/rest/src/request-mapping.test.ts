import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type DescMessage,
  fromJson,
  type JsonObject,
  type JsonValue,
  toJson,
} from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "@keel/gen/errdetails/v1/errdetails_pb";
import { CreateOrderRequestSchema, PayOrderRequestSchema } from "@keel/gen/order/v1/order_pb";
import { GetUserRequestSchema, ListUsersRequestSchema } from "@keel/gen/user/v1/user_pb";
import { requestMessage } from "./request-mapping.ts";
import {
  ListBooksRequestSchema,
  MoveBookRequestSchema,
  UpdateBookRequestSchema,
} from "./testing/library.ts";

interface Parts {
  path?: Record<string, string>;
  query?: string;
  body?: JsonValue;
}

/** The request message made of the parts, in its proto3 JSON form. */
function map(input: DescMessage, body: string, parts: Parts) {
  const message = requestMessage(input, body, {
    pathVariables: new Map(Object.entries(parts.path ?? {})),
    query: new URLSearchParams(parts.query ?? ""),
    body: parts.body,
  });
  return toJson(input, message) as JsonObject;
}

/** Asserts INVALID_ARGUMENT whose message matches, with a BadRequest detail naming `field`. */
function assertInvalid(fn: () => unknown, field: string, message: RegExp): void {
  assert.throws(fn, (err) => {
    assert.ok(err instanceof ConnectError);
    assert.equal(err.code, Code.InvalidArgument);
    assert.match(err.rawMessage, message);
    const [badRequest] = err.findDetails(BadRequestSchema);
    assert.equal(badRequest?.fieldViolations[0]?.field, field);
    return true;
  });
}

describe('body: "*"', () => {
  it("takes the body as the message, the path winning over it", () => {
    const json = map(CreateOrderRequestSchema, "*", {
      path: { user_id: "5" },
      body: { user_id: "6", items: [{ sku: "a", quantity: 2 }], idempotencyKey: "k" },
    });
    assert.deepEqual(json, {
      userId: "5",
      items: [{ sku: "a", quantity: 2 }],
      idempotencyKey: "k",
    });
    assert.equal(fromJson(CreateOrderRequestSchema, json).userId, 5n);
  });

  it("takes an empty body as an empty message", () => {
    assert.deepEqual(map(MoveBookRequestSchema, "*", { path: { name: "shelves/1/books/2" } }), {
      name: "shelves/1/books/2",
    });
  });

  it("refuses a body that is not an object, a query, unknown fields and wrong types", () => {
    assertInvalid(() => map(MoveBookRequestSchema, "*", { body: [1] }), "", /JSON object/);
    assertInvalid(
      () => map(MoveBookRequestSchema, "*", { query: "destination=x", body: {} }),
      "destination",
      /every field in the JSON body/,
    );
    assertInvalid(
      () => map(MoveBookRequestSchema, "*", { body: { destinaton: "x" } }),
      "",
      /destinaton/,
    );
    assertInvalid(
      () => map(CreateOrderRequestSchema, "*", { body: { items: [{ quantity: "many" }] } }),
      "",
      /quantity/,
    );
  });
});

describe('body: "field"', () => {
  it("puts the body in the field, nested path variables and the query around it", () => {
    const json = map(UpdateBookRequestSchema, "book", {
      path: { "book.name": "shelves/1/books/2" },
      query: "update_mask=pages,name",
      body: { pages: 300, name: "shelves/9/books/9" },
    });
    assert.deepEqual(json, {
      book: { pages: 300, name: "shelves/1/books/2" },
      updateMask: "pages,name",
    });
  });

  it("takes the rest from the query, by proto or JSON name", () => {
    for (const key of ["idempotency_key", "idempotencyKey"]) {
      const json = map(PayOrderRequestSchema, "amount", {
        path: { order_id: "12" },
        query: `${key}=pay-1`,
        body: { currencyCode: "USD", amountMinor: "1999" },
      });
      assert.deepEqual(json, {
        orderId: "12",
        amount: { currencyCode: "USD", amountMinor: "1999" },
        idempotencyKey: "pay-1",
      });
    }
  });

  it("refuses the body's field in the query, and a field given twice", () => {
    assertInvalid(
      () => map(UpdateBookRequestSchema, "book", { query: "book.pages=3", body: {} }),
      "book.pages",
      /belongs in the request body/,
    );
    assertInvalid(
      () => map(PayOrderRequestSchema, "amount", { query: "idempotency_key=a&idempotencyKey=b" }),
      "idempotency_key",
      /given 2 times/,
    );
  });
});

describe("query parameters", () => {
  it("converts every kind of value to its proto3 JSON form", () => {
    const query = [
      "page_size=10",
      "filter.author.address.city=Paris",
      "filter.author.displayName=Ann",
      "filter.tags=a&filter.tags=b",
      "filter.related_ids=1&filter.relatedIds=2",
      "filter.genre=GENRE_POETRY",
      "filter.genres=1&filter.genres=GENRE_FICTION",
      "filter.available=true",
      "filter.rating=4.5",
      "filter.weight=NaN",
      "filter.big=18446744073709551615",
      "filter.id=-9223372036854775808",
      "filter.published_at=2024-01-02T03:04:05Z",
      "filter.edition=2",
      "filter.cover=aGk_",
      "filter.copies=4294967295",
    ].join("&");
    const json = map(ListBooksRequestSchema, "", { path: { parent: "shelves/1" }, query });
    assert.deepEqual(json, {
      pageSize: 10,
      filter: {
        author: { address: { city: "Paris" }, displayName: "Ann" },
        tags: ["a", "b"],
        relatedIds: ["1", "2"],
        genre: "GENRE_POETRY",
        // By number or by name; the message's JSON names them.
        genres: ["GENRE_FICTION", "GENRE_FICTION"],
        available: true,
        rating: 4.5,
        weight: "NaN",
        big: "18446744073709551615",
        id: "-9223372036854775808",
        publishedAt: "2024-01-02T03:04:05Z",
        edition: 2,
        // Base64url in the query; the message's JSON is standard base64.
        cover: "aGk/",
        copies: 4294967295,
      },
      parent: "shelves/1",
    });
    const message = fromJson(ListBooksRequestSchema, json);
    assert.equal(message.$typeName, "test.v1.ListBooksRequest");
  });

  it("converts path variables the same way", () => {
    assert.deepEqual(
      map(GetUserRequestSchema, "", { path: { user_id: "42" }, query: "fields=a&fields=b" }),
      {
        userId: "42",
        fields: ["a", "b"],
      },
    );
    assertInvalid(
      () => map(GetUserRequestSchema, "", { path: { user_id: "abc" } }),
      "user_id",
      /user_id: expected an integer/,
    );
  });

  it("refuses values of the wrong type, saying what was expected", () => {
    for (const [query, field, message] of [
      ["page_size=abc", "page_size", /expected an integer from -2147483648 to 2147483647/],
      ["page_size=2147483648", "page_size", /expected an integer/],
      ["filter.id=1.5", "filter.id", /expected an integer/],
      ["filter.big=-1", "filter.big", /expected an integer from 0/],
      ["filter.genre=NOPE", "filter.genre", /one of GENRE_UNSPECIFIED, GENRE_FICTION/],
      ["filter.available=yes", "filter.available", /expected true or false/],
      ["filter.rating=0x10", "filter.rating", /expected a number/],
      ["filter.cover=a*b", "filter.cover", /expected base64/],
      ["filter.published_at=yesterday", "", /publishedAt|published_at|timestamp/i],
    ] as const) {
      assertInvalid(() => map(ListBooksRequestSchema, "", { query }), field, message);
    }
    assertInvalid(
      () => map(ListUsersRequestSchema, "", { query: "status=USER_STATUS_GONE" }),
      "status",
      /USER_STATUS_ACTIVE/,
    );
  });

  it("refuses unknown names, maps, lists of messages, messages and path fields", () => {
    for (const [query, field, message] of [
      ["page=1", "page", /unknown query parameter; test.v1.ListBooksRequest has no such field/],
      ["filter.nope=1", "filter.nope", /unknown query parameter/],
      ["filter.labels=x", "filter.labels", /a map cannot be set from the query/],
      ["filter.contributors.display_name=x", "filter.contributors.display_name", /unknown/],
      ["filter.contributors=x", "filter.contributors", /a list of messages/],
      [
        "filter.author=x",
        "filter.author",
        /is a message; set its fields, like "author.display_name"/,
      ],
      ["parent=shelves/2", "parent", /is set by the URL path/],
      ["page_size=1&page_size=2", "page_size", /given 2 times/],
    ] as const) {
      assertInvalid(
        () => map(ListBooksRequestSchema, "", { path: { parent: "shelves/1" }, query }),
        field,
        message,
      );
    }
  });
});
