import assert from "node:assert/strict";
import * as http from "node:http";
import { after, before, describe, it } from "node:test";
import { startTestServer, type TestServer } from "./testing/test-server.ts";

/**
 * Sends a POST with the start of a body and no more, over HTTP/1.1, and resolves with the answer
 * (the server must answer on its own: the rest of the body never comes).
 */
function sendHalf(
  url: string,
  path: string,
  contentType: string,
  start: string,
): Promise<{
  status: number;
  body: { code?: string; message?: string; error?: { message: string } };
}> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: hostname,
      port,
      method: "POST",
      path,
      headers: { "content-type": contentType },
    });
    req.on("error", reject);
    req.on("response", async (res) => {
      let text = "";
      for await (const chunk of res) text += String(chunk);
      resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
      req.destroy();
    });
    req.write(start);
  });
}

const kib = 1024;

// The server's request-body settings reach the engine, for REST and for the RPC protocols alike:
// sign-up (public CreateUser) bodies that never end.
describe("request body settings (KEEL_REQUEST_BUFFER_*, KEEL_REQUEST_BODY_IDLE_TIMEOUT_MS)", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      requestBodies: {
        bufferedBytesPerConnection: 32 * kib,
        bufferedBytesPerProcess: 64 * kib,
        idleTimeoutMs: 300,
      },
    });
  });
  after(() => server.stop());

  const routes = [
    ["REST", "/api/v1/users", "application/json"],
    ["Connect", "/user.v1.UserService/CreateUser", "application/json"],
  ] as const;

  for (const [protocol, path, type] of routes) {
    it(`${protocol}: a body past the connection's budget is refused; one that stalls fails`, async () => {
      const big = await sendHalf(server.url, path, type, `{"username": "${"x".repeat(40 * kib)}`);
      const small = await sendHalf(server.url, path, type, '{"username": "ada"');
      if (protocol === "REST") {
        assert.equal(big.status, 429);
        assert.match(
          big.body.error?.message ?? "",
          /this connection is holding its limit of 32768 bytes/,
        );
        assert.equal(small.status, 504);
        assert.equal(small.body.error?.message, "the request body stalled: no data for 300 ms");
      } else {
        assert.equal(big.body.code, "resource_exhausted");
        assert.match(big.body.message ?? "", /this connection is holding its limit of 32768 bytes/);
        assert.equal(small.body.code, "deadline_exceeded");
        assert.equal(small.body.message, "the request body stalled: no data for 300 ms");
      }
    });
  }
});
