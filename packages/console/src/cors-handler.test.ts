import assert from "node:assert/strict";
import { once } from "node:events";
import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { cors } from "@connectrpc/connect";
import { corsDefaults, createCorsHandler } from "./cors-handler.ts";

const allowed = "http://app.example.test:8080";
const handler = createCorsHandler({ allowedOrigins: ["HTTP://App.Example.test:8080/"] });

/** A real server: CORS first, then a stand-in for the services that answers every request. */
let base = "";
let reached = 0;
const server = http.createServer((req, res) => {
  if (handler(req, res)) return;
  reached++;
  res.writeHead(200, { "content-type": "application/json", "x-request-id": "r1" });
  res.end("{}");
});
before(async () => {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

const path = "/user.v1.UserService/GetUser";
const preflight = (
  origin: string,
  method = "POST",
  headers = "authorization,content-type,connect-protocol-version",
) =>
  fetch(`${base}${path}`, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": method,
      "access-control-request-headers": headers,
    },
  });
const list = (value: string | null) => (value ?? "").split(/,\s*/).map((h) => h.toLowerCase());

describe("createCorsHandler", () => {
  it("answers a preflight from an allowed origin with Connect's and gRPC-Web's methods and headers", async () => {
    const before = reached;
    const res = await preflight(allowed);
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), allowed);
    assert.deepEqual(list(res.headers.get("access-control-allow-methods")), ["post", "get"]);
    const headers = list(res.headers.get("access-control-allow-headers"));
    for (const name of [...cors.allowedHeaders, "authorization", "x-request-id"]) {
      assert.ok(headers.includes(name.toLowerCase()), name);
    }
    assert.equal(res.headers.get("access-control-max-age"), "7200");
    assert.equal(res.headers.get("access-control-allow-credentials"), null);
    assert.match(res.headers.get("vary") ?? "", /Origin/);
    assert.equal(reached, before, "a preflight must not reach the services");
  });

  it("allows a machine's API key header (x-api-key) in a preflight from an allowed origin", async () => {
    const asked = ["x-api-key", "content-type", "connect-protocol-version"];
    const res = await preflight(allowed, "POST", asked.join(","));
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), allowed);
    const headers = list(res.headers.get("access-control-allow-headers"));
    for (const name of asked) assert.ok(headers.includes(name), `${name} is not allowed`);
  });

  it("refuses a preflight from any other origin, without CORS headers", async () => {
    for (const origin of ["http://evil.example.test", "http://app.example.test:8081", "null"]) {
      const before = reached;
      const res = await preflight(origin);
      assert.equal(res.status, 403, origin);
      assert.equal(res.headers.get("access-control-allow-origin"), null);
      assert.equal(res.headers.get("access-control-allow-methods"), null);
      assert.match(await res.text(), /is not allowed: add it to cors\.allowedOrigins/);
      assert.equal(reached, before);
    }
  });

  it("lets a call from an allowed origin through, exposing the headers clients read", async () => {
    const res = await fetch(`${base}${path}`, {
      method: "POST",
      headers: { origin: allowed, "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("access-control-allow-origin"), allowed);
    assert.equal(res.headers.get("vary"), "Origin");
    const exposed = list(res.headers.get("access-control-expose-headers"));
    for (const name of [...cors.exposedHeaders, "x-request-id", "retry-after"]) {
      assert.ok(exposed.includes(name.toLowerCase()), name);
    }
  });

  it("adds nothing to calls from other origins or without one, and leaves them to the services", async () => {
    for (const headers of [{ origin: "http://evil.example.test" }, {}]) {
      const before = reached;
      const res = await fetch(`${base}${path}`, { method: "POST", headers, body: "{}" });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("access-control-allow-origin"), null);
      assert.equal(res.headers.get("access-control-expose-headers"), null);
      assert.equal(reached, before + 1);
    }
  });

  it("takes an OPTIONS request that is not a preflight for a call", async () => {
    const before = reached;
    const res = await fetch(`${base}${path}`, { method: "OPTIONS", headers: { origin: allowed } });
    assert.equal(res.status, 200);
    assert.equal(reached, before + 1);
  });

  it("works over HTTP/2 as well", async () => {
    const h2 = http2.createServer((req, res) => {
      if (handler(req, res)) return;
      res.writeHead(200);
      res.end();
    });
    h2.listen(0, "127.0.0.1");
    await once(h2, "listening");
    const client = http2.connect(`http://127.0.0.1:${(h2.address() as AddressInfo).port}`);
    try {
      const stream = client.request({
        ":method": "OPTIONS",
        ":path": path,
        origin: allowed,
        "access-control-request-method": "POST",
      });
      stream.end();
      const [headers] = (await once(stream, "response")) as [http2.IncomingHttpHeaders];
      stream.resume();
      assert.equal(headers[":status"], 204);
      assert.equal(headers["access-control-allow-origin"], allowed);
    } finally {
      client.close();
      h2.close();
    }
  });

  it("refuses allowed origins that are not origins", () => {
    for (const origin of [
      "*",
      "app.example.test",
      "https://app.example.test/path",
      "https://a.test?x=1",
    ]) {
      assert.throws(
        () => createCorsHandler({ allowedOrigins: [origin] }),
        /is not an origin/,
        origin,
      );
    }
  });

  it("covers every method and header of connect's cors constants", () => {
    const has = (names: readonly string[], name: string) =>
      names.some((n) => n.toLowerCase() === name.toLowerCase());
    for (const m of cors.allowedMethods) assert.ok(has(corsDefaults.allowedMethods, m), m);
    for (const h of cors.allowedHeaders) assert.ok(has(corsDefaults.allowedHeaders, h), h);
    for (const h of cors.exposedHeaders) assert.ok(has(corsDefaults.exposedHeaders, h), h);
  });
});
