import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { callRequestHeader, restResponseHeaders } from "./headers.ts";

describe("callRequestHeader", () => {
  it("hands on the call's headers, not the exchange's, the content's or the protocols'", () => {
    const header = callRequestHeader({
      ":path": "/api/v1/users/1",
      host: "example.com",
      connection: "keep-alive",
      "content-type": "application/json",
      "content-length": "2",
      "accept-encoding": "gzip",
      "connect-protocol-version": "1",
      "grpc-encoding": "gzip",
      authorization: "Bearer x.y.z",
      "x-request-id": "r1",
      traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      baggage: "k=v",
      "x-forwarded-for": ["10.0.0.1", "10.0.0.2"],
    });
    assert.deepEqual(Object.fromEntries(header), {
      authorization: "Bearer x.y.z",
      baggage: "k=v",
      traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      "x-forwarded-for": "10.0.0.1, 10.0.0.2",
      "x-request-id": "r1",
    });
  });

  it("takes the deadline from connect-timeout-ms, grpc-timeout or x-server-timeout", () => {
    const timeout = (headers: Record<string, string>) =>
      callRequestHeader(headers).get("connect-timeout-ms");
    assert.equal(timeout({ "connect-timeout-ms": "250", "grpc-timeout": "1S" }), "250");
    assert.equal(timeout({ "grpc-timeout": "2S" }), "2000");
    assert.equal(timeout({ "grpc-timeout": "1M" }), "60000");
    assert.equal(timeout({ "grpc-timeout": "1500u" }), "2");
    assert.equal(timeout({ "x-server-timeout": "1.5" }), "1500");
    assert.equal(timeout({ "grpc-timeout": "soon" }), null);
    assert.equal(timeout({}), null);
  });
});

describe("restResponseHeaders", () => {
  it("drops protocol and content headers and turns unary trailers into headers", () => {
    const header = new Headers({
      "content-type": "application/json",
      "content-length": "10",
      "connect-content-encoding": "gzip",
      "x-request-id": "r1",
      "trailer-x-cost": "3",
    });
    assert.deepEqual(restResponseHeaders(header, new Headers({ "retry-after": "3" })), {
      "x-request-id": ["r1"],
      "x-cost": ["3"],
      "retry-after": ["3"],
    });
  });
});
