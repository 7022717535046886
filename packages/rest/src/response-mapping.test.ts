import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GetUserResponseSchema } from "@keel/gen/user/v1/user_pb";
import { responseBodyOf } from "./response-mapping.ts";
import { BookSchema, ListBooksResponseSchema } from "./testing/library.ts";

describe("responseBodyOf", () => {
  it("answers the whole message without response_body", () => {
    assert.deepEqual(responseBodyOf(GetUserResponseSchema, "")({ user: { userId: "1" } }), {
      user: { userId: "1" },
    });
  });

  it("answers the response_body field, by JSON or proto name", () => {
    assert.deepEqual(responseBodyOf(GetUserResponseSchema, "user")({ user: { userId: "1" } }), {
      userId: "1",
    });
    assert.deepEqual(responseBodyOf(ListBooksResponseSchema, "books")({ books: [{ name: "b" }] }), [
      { name: "b" },
    ]);
    assert.equal(
      responseBodyOf(ListBooksResponseSchema, "next_page_token")({ next_page_token: "t" }),
      "t",
    );
  });

  it("answers the field's default when proto3 JSON left it out", () => {
    assert.deepEqual(responseBodyOf(GetUserResponseSchema, "user")({}), {});
    assert.deepEqual(responseBodyOf(ListBooksResponseSchema, "books")({}), []);
    assert.equal(responseBodyOf(ListBooksResponseSchema, "next_page_token")({}), "");
    const defaults = ["name", "pages", "id", "available", "genre", "labels", "published_at"].map(
      (field) => responseBodyOf(BookSchema, field)({}),
    );
    assert.deepEqual(defaults, ["", 0, "0", false, "GENRE_UNSPECIFIED", {}, {}]);
  });
});
