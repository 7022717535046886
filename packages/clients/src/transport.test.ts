import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createTransport } from "./transport.ts";

describe("createTransport", () => {
  it("refuses gRPC over HTTP/1.1 with a message that says what to change", () => {
    assert.throws(
      () => createTransport({ baseUrl: "http://127.0.0.1:9090", httpVersion: "1.1" }),
      /gRPC protocol needs HTTP\/2: set httpVersion to "2"/,
    );
  });

  it("builds a transport for each protocol", () => {
    for (const protocol of ["grpc", "grpc-web", "connect"] as const) {
      const transport = createTransport({ baseUrl: "http://127.0.0.1:9090", protocol });
      assert.equal(typeof transport.unary, "function");
      assert.equal(typeof transport.stream, "function");
    }
  });
});
