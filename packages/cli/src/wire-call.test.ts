import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import type { Protocol } from "@keel/clients";
import { createWireCall, WireConnection } from "./wire-call.ts";

// Answers that are not a well-formed status of the protocol: what a proxy or a broken peer sends.
// The path picks the answer.
const answers: Record<string, (stream: http2.ServerHttp2Stream) => void> = {
  "/proxy-503": (stream) => {
    stream.respond({ ":status": 503, "content-type": "text/html" });
    stream.end("<html>upstream unavailable</html>");
  },
  "/connect-error": (stream) => {
    stream.respond({ ":status": 429, "content-type": "application/json" });
    stream.end(JSON.stringify({ code: "resource_exhausted", message: "slow down" }));
  },
  "/connect-bad-code": (stream) => {
    stream.respond({ ":status": 400, "content-type": "application/json" });
    stream.end(JSON.stringify({ code: "no_such_code", message: "odd" }));
  },
  "/reset": (stream) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM),
  "/no-status": (stream) => {
    stream.respond({ ":status": 200, "content-type": "application/grpc" });
    stream.end();
  },
};

let server: http2.Http2Server;
let connection: WireConnection;
before(async () => {
  server = http2.createServer();
  server.on("stream", (stream, headers) => {
    stream.on("error", () => {});
    const answer = answers[String(headers[":path"])];
    if (answer !== undefined) answer(stream);
    else stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  connection = new WireConnection(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
after(async () => {
  connection.close();
  await new Promise((resolve) => server.close(resolve));
});

function call(protocol: Protocol, path: string): Promise<{ code: number; message: string }> {
  const { call } = createWireCall({
    connection,
    protocol,
    path,
    request: new Uint8Array(0),
    streaming: false,
    token: undefined,
    timeoutMs: 5000,
    counters: { messages: 0 },
  });
  return new Promise((resolve) => call((code, message) => resolve({ code, message })));
}

describe("a call on the wire reads the status of answers that carry none", () => {
  it("takes a Connect error without a JSON body from the HTTP status (503 → UNAVAILABLE)", async () => {
    assert.deepEqual(await call("connect", "/proxy-503"), {
      code: Code.Unavailable,
      message: "HTTP 503",
    });
  });

  it("takes a Connect error's own code when it names one, and the HTTP status when not", async () => {
    assert.deepEqual(await call("connect", "/connect-error"), {
      code: Code.ResourceExhausted,
      message: "slow down",
    });
    assert.deepEqual(await call("connect", "/connect-bad-code"), {
      code: Code.Internal,
      message: "odd",
    });
  });

  for (const protocol of ["grpc", "grpc-web"] as const) {
    it(`takes a ${protocol} answer without grpc-status from its HTTP status`, async () => {
      assert.deepEqual(await call(protocol, "/proxy-503"), {
        code: Code.Unavailable,
        message: "HTTP status 503",
      });
    });
  }

  it("reads a refused stream as UNAVAILABLE", async () => {
    const result = await call("grpc", "/reset");
    assert.equal(result.code, Code.Unavailable);
    assert.match(result.message, /stream reset with HTTP\/2 error code 7/);
  });

  it("reports a gRPC response that ends without a status", async () => {
    assert.deepEqual(await call("grpc", "/no-status"), {
      code: Code.Unknown,
      message: "the response ended without a status",
    });
  });
});
