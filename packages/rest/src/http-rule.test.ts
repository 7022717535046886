import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, createFileRegistry, fromJson, setExtension } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, MethodOptionsSchema } from "@bufbuild/protobuf/wkt";
import { file_google_api_annotations, http } from "@keel/gen/google/api/annotations_pb";
import type { HttpRuleJson } from "@keel/gen/google/api/http_pb";
import { HttpRuleSchema } from "@keel/gen/google/api/http_pb";
import { OrderService } from "@keel/gen/order/v1/order_pb";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { collectHttpBindings } from "./http-rule.ts";
import { LibraryService } from "./testing/library.ts";

/** A service whose one method, Call(Req) returns (Res), has the given rule. */
function serviceWith(rule: HttpRuleJson, streaming: { client?: boolean } = {}) {
  const options = create(MethodOptionsSchema);
  setExtension(options, http, fromJson(HttpRuleSchema, rule));
  const file = create(FileDescriptorProtoSchema, {
    name: "t.proto",
    package: "t",
    syntax: "proto3",
    dependency: ["google/api/annotations.proto"],
    messageType: [
      {
        name: "Req",
        field: [
          { name: "id", jsonName: "id", number: 1, type: 3, label: 1 },
          { name: "tags", jsonName: "tags", number: 2, type: 9, label: 3 },
          { name: "inner", jsonName: "inner", number: 3, type: 11, typeName: ".t.Req", label: 1 },
        ],
      },
      { name: "Res", field: [{ name: "id", jsonName: "id", number: 1, type: 3, label: 1 }] },
    ],
    service: [
      {
        name: "S",
        method: [
          {
            name: "Call",
            inputType: ".t.Req",
            outputType: ".t.Res",
            clientStreaming: streaming.client ?? false,
            options,
          },
        ],
      },
    ],
  });
  const registry = createFileRegistry(file, () => file_google_api_annotations);
  const service = registry.getService("t.S");
  assert.ok(service !== undefined);
  return service;
}

describe("collectHttpBindings", () => {
  it("collects keel's rules", () => {
    const bindings = collectHttpBindings([UserService, OrderService]);
    assert.equal(bindings.length, 16);
    const pay = bindings.find((b) => b.procedure === "order.v1.OrderService/PayOrder");
    assert.equal(pay?.httpMethod, "POST");
    assert.equal(pay?.template.verb, "pay");
    assert.equal(pay?.body, "amount");
    const get = bindings.find((b) => b.procedure === "user.v1.UserService/GetUser");
    assert.equal(get?.responseBody, "user");
  });

  it("collects additional bindings and custom methods", () => {
    const bindings = collectHttpBindings([LibraryService]);
    assert.deepEqual(
      bindings.map((b) => `${b.httpMethod} ${b.template.source}`),
      [
        "GET /v1/{name=shelves/*/books/*}",
        "GET /v1/books/{name=**}",
        "PATCH /v1/{book.name=shelves/*/books/*}",
        "GET /v1/{parent=shelves/*}/books",
        "POST /v1/{name=shelves/*/books/*}:move",
        "SEARCH /v1/books:watch",
      ],
    );
  });

  it("accepts nested path fields", () => {
    assert.equal(collectHttpBindings([serviceWith({ get: "/v1/{inner.inner.id}" })]).length, 1);
  });

  it("refuses rules it cannot serve, naming the method", () => {
    for (const [rule, problem] of [
      [{ get: "/v1/{nope}" }, /t.S\/Call: \{nope\} names no singular scalar field/],
      [{ get: "/v1/{tags}" }, /\{tags\} names no singular scalar field/],
      [{ get: "/v1/{inner}" }, /\{inner\} names no singular scalar field/],
      [{ post: "/v1/x", body: "nope" }, /body "nope" names no top-level field of t.Req/],
      [{ get: "/v1/x", responseBody: "nope" }, /response_body "nope" names no top-level field/],
      [{ get: "v1/x" }, /invalid path template/],
      [{ body: "*" }, /no HTTP method and path/],
    ] as const) {
      assert.throws(() => collectHttpBindings([serviceWith(rule)]), problem);
    }
    assert.throws(
      () => collectHttpBindings([serviceWith({ post: "/v1/x" }, { client: true })]),
      /a client-streaming method cannot be served over HTTP\/JSON/,
    );
  });
});
