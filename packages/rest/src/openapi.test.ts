import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import SwaggerParser from "@apidevtools/swagger-parser";
import { OrderService } from "@keel/gen/order/v1/order_pb";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { formatOpenApiDocument, generateOpenApiDocument } from "../scripts/openapi-document.ts";
import { createOpenApiDocument, descriptorSetOf, type OpenApiDocument } from "./openapi.ts";
import { openApiFile } from "./openapi-file.ts";
import { LibraryService } from "./testing/library.ts";

/** Validates against the OpenAPI 3.0 schema and checks references (on a copy: it dereferences). */
async function validate(document: OpenApiDocument): Promise<void> {
  const copy = structuredClone(document) as unknown as Parameters<typeof SwaggerParser.validate>[1];
  await SwaggerParser.validate(copy);
}

describe("keel's OpenAPI document", () => {
  // From `buf build`, with comments, as the `openapi` script writes it.
  const document = generateOpenApiDocument();

  it("is valid OpenAPI 3.0", async () => {
    await validate(document);
  });

  it("is what packages/rest/openapi.json holds", () => {
    const written = readFileSync(openApiFile, "utf8");
    assert.ok(
      written === formatOpenApiDocument(document),
      "openapi.json differs from the protos: run `pnpm --filter @keel/rest openapi`",
    );
  });

  it("has a path per google.api.http rule, with parameters, bodies and responses", () => {
    const routes = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.keys(item).map((verb) => `${verb.toUpperCase()} ${path}`),
    );
    assert.deepEqual(routes.sort(), [
      "DELETE /api/v1/api-keys/{key_id}",
      "GET /api/v1/api-keys",
      "GET /api/v1/orders/{order_id}",
      "GET /api/v1/orders/{order_id}/events",
      "GET /api/v1/users",
      "GET /api/v1/users/{user_id}",
      "GET /api/v1/users/{user_id}/activities",
      "GET /api/v1/users/{user_id}/orders",
      "POST /api/v1/api-keys",
      "POST /api/v1/auth/login",
      "POST /api/v1/auth/refresh",
      "POST /api/v1/orders/{order_id}:cancel",
      "POST /api/v1/orders/{order_id}:pay",
      "POST /api/v1/orders/{order_id}:ship",
      "POST /api/v1/users",
      "POST /api/v1/users/{user_id}/orders",
    ]);
    const getUser = document.paths["/api/v1/users/{user_id}"]?.get;
    assert.equal(getUser?.operationId, "UserService_GetUser");
    assert.match(getUser?.description ?? "", /^GetUser returns one user/);
    assert.deepEqual(getUser?.parameters[0], {
      name: "user_id",
      in: "path",
      required: true,
      schema: { type: "string", format: "int64" },
    });
    assert.deepEqual(getUser?.parameters[1]?.schema, { type: "array", items: { type: "string" } });
    assert.equal(getUser?.parameters[1]?.explode, true);
    // response_body: "user"
    assert.deepEqual(getUser?.responses["200"]?.content["application/json"]?.schema, {
      $ref: "#/components/schemas/user.v1.User",
    });
    assert.deepEqual(getUser?.responses.default?.content["application/json"]?.schema, {
      $ref: "#/components/schemas/Error",
    });

    const pay = document.paths["/api/v1/orders/{order_id}:pay"]?.post;
    assert.deepEqual(
      pay?.parameters.map((p) => `${p.in}:${p.name}`),
      ["path:order_id", "query:idempotencyKey"],
    );
    assert.deepEqual(pay?.requestBody?.content["application/json"]?.schema.allOf, [
      { $ref: "#/components/schemas/order.v1.Money" },
    ]);
    // The path's user_id is not part of CreateOrder's body.
    const createOrder = document.paths["/api/v1/users/{user_id}/orders"]?.post;
    const body = createOrder?.requestBody?.content["application/json"]?.schema;
    assert.deepEqual(Object.keys(body?.properties ?? {}), ["items", "idempotencyKey"]);
  });

  it("sends server streams as NDJSON", () => {
    const track = document.paths["/api/v1/orders/{order_id}/events"]?.get;
    assert.deepEqual(track?.responses["200"]?.content["application/x-ndjson"]?.schema, {
      $ref: "#/components/schemas/order.v1.TrackOrderResponse",
    });
  });

  it("writes messages in proto3 JSON terms, with comments as descriptions", () => {
    const { schemas } = document.components;
    const user = schemas["user.v1.User"];
    assert.equal(user?.description, "A registered user.");
    assert.deepEqual(user?.properties?.userId, {
      type: "string",
      format: "int64",
      description: "Server-assigned, positive, never reused.",
    });
    assert.deepEqual(user?.properties?.status, { $ref: "#/components/schemas/user.v1.UserStatus" });
    assert.deepEqual(user?.properties?.createdAt, { type: "string", format: "date-time" });
    assert.equal(user?.properties?.tags?.type, "array");
    assert.deepEqual(user?.properties?.metadata?.additionalProperties, { type: "string" });
    assert.deepEqual(schemas["user.v1.UserStatus"]?.enum, [
      "USER_STATUS_UNSPECIFIED",
      "USER_STATUS_ACTIVE",
      "USER_STATUS_INACTIVE",
      "USER_STATUS_SUSPENDED",
    ]);
    assert.deepEqual(schemas["order.v1.Order"]?.properties?.payment, {
      allOf: [{ $ref: "#/components/schemas/order.v1.Payment" }],
      description: "Set once the order is paid.",
    });
    // Lint directives are no description.
    const stream = document.paths["/api/v1/users/{user_id}/activities"]?.get;
    assert.doesNotMatch(stream?.description ?? "", /buf:lint/);
  });

  it("asks for a bearer token, except where the method is public", () => {
    assert.deepEqual(document.security, [{ bearerAuth: [] }]);
    assert.equal(document.components.securitySchemes.bearerAuth?.scheme, "bearer");
    assert.deepEqual(document.paths["/api/v1/auth/login"]?.post?.security, []);
    assert.deepEqual(document.paths["/api/v1/users"]?.post?.security, []);
    assert.equal(document.paths["/api/v1/users"]?.get?.security, undefined);
  });
});

describe("createOpenApiDocument", () => {
  it("works from generated code's descriptors too, without descriptions", async () => {
    const document = createOpenApiDocument({
      files: descriptorSetOf([UserService, OrderService]),
      services: [UserService.typeName, OrderService.typeName],
      pathPrefix: "/rest/",
    });
    await validate(document);
    assert.equal(document.info.title, "user.v1.UserService, order.v1.OrderService");
    assert.ok(document.paths["/rest/api/v1/users/{user_id}"]);
    assert.equal(document.components.schemas["user.v1.User"]?.description, undefined);
  });

  it("documents nested path fields, ** , verbs, body fields and additional bindings", async () => {
    const document = createOpenApiDocument({ files: descriptorSetOf([LibraryService]) });
    await validate(document);
    assert.deepEqual(Object.keys(document.paths), [
      "/v1/{name}",
      "/v1/books/{name}",
      "/v1/{book.name}",
      "/v1/{parent}/books",
      "/v1/{name}:move",
    ]);
    const get = document.paths["/v1/{name}"]?.get;
    assert.equal(get?.operationId, "LibraryService_GetBook");
    assert.equal(get?.description, "GetBook returns a book.");
    assert.equal(get?.parameters[0]?.description, "Matches `shelves/*/books/*`.");
    assert.equal(document.paths["/v1/books/{name}"]?.get?.operationId, "LibraryService_GetBook_1");
    const update = document.paths["/v1/{book.name}"]?.patch;
    assert.equal(update?.parameters[0]?.name, "book.name");
    assert.deepEqual(
      update?.parameters.slice(1).map((p) => p.name),
      ["updateMask"],
    );
    const list = document.paths["/v1/{parent}/books"]?.get;
    const names = list?.parameters.map((p) => p.name) ?? [];
    assert.ok(names.includes("filter.author.address.city"), names.join());
    assert.ok(
      !names.some((n) => n.startsWith("filter.labels") || n.startsWith("filter.contributors")),
    );
    assert.deepEqual(list?.responses["200"]?.content["application/json"]?.schema, {
      type: "array",
      items: { $ref: "#/components/schemas/test.v1.Book" },
    });
    const book = document.components.schemas["test.v1.Book"]?.properties ?? {};
    assert.deepEqual(book.edition, { type: "integer", format: "int32", nullable: true });
    assert.deepEqual(book.big, { type: "string", format: "uint64" });
    assert.equal(
      document.components.schemas["test.v1.Genre"]?.description,
      "- `GENRE_FICTION`: Made up.",
    );
  });
});
