import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError, type HandlerContext, type Transport } from "@connectrpc/connect";
import {
  compressionGzip,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import {
  createFixtureClient,
  frame,
  rawCall,
  rawRequest,
  startEngineServer,
  until,
} from "./testing/fixture.ts";

// Real clients of every protocol, over HTTP/2 and HTTP/1.1, calling every call kind of the engine;
// then what only the engine does (gRPC-Web text), and deadlines and cancellation per protocol.

let server: Awaited<ReturnType<typeof startEngineServer>>;
const seen: HandlerContext[] = [];

before(async () => {
  server = await startEngineServer({ seen, acceptCompression: [compressionGzip] });
});
after(() => server.close());

async function* values(...texts: string[]) {
  for (const value of texts) yield { value };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const transports: [string, () => Transport, boolean][] = [
  ["gRPC, HTTP/2", () => createGrpcTransport({ baseUrl: server.url }), true],
  [
    "gRPC-Web, HTTP/2",
    () => createGrpcWebTransport({ baseUrl: server.url, httpVersion: "2" }),
    true,
  ],
  [
    "gRPC-Web, HTTP/1.1",
    () => createGrpcWebTransport({ baseUrl: server.http1Url, httpVersion: "1.1" }),
    false,
  ],
  [
    "Connect proto, HTTP/2",
    () => createConnectTransport({ baseUrl: server.url, httpVersion: "2", useBinaryFormat: true }),
    true,
  ],
  [
    "Connect JSON, HTTP/1.1, gzip",
    () =>
      createConnectTransport({
        baseUrl: server.http1Url,
        httpVersion: "1.1",
        sendCompression: compressionGzip,
        acceptCompression: [compressionGzip],
        compressMinBytes: 1,
      }),
    false,
  ],
  [
    "Connect GET, HTTP/1.1",
    () =>
      createConnectTransport({
        baseUrl: server.http1Url,
        httpVersion: "1.1",
        useHttpGet: true,
      }),
    false,
  ],
];

for (const [name, transport, duplex] of transports) {
  describe(`a real client: ${name}`, () => {
    it("makes every kind of call", async () => {
      const client = createFixtureClient(transport());
      assert.equal((await client.unary({ value: "hi" })).value, "hi");
      assert.deepEqual(
        (await collect(client.serverStream({ value: "count:3" }))).map((m) => m.value),
        ["0", "1", "2"],
      );
      assert.equal((await client.clientStream(values("a", "b"))).value, "a,b");
      if (duplex) {
        assert.deepEqual(
          (await collect(client.bidi(values("x", "y")))).map((m) => m.value),
          ["x", "y"],
        );
      }
    });

    it("gets errors with their code, message and metadata", async () => {
      const client = createFixtureClient(transport());
      const err = await client.unary({ value: "error:NotFound:no such thing" }).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      assert.equal(err?.code, Code.NotFound);
      assert.equal(err?.rawMessage, "no such thing");
      const failed = await collect(client.serverStream({ value: "error:Aborted:midway" })).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      assert.equal(failed?.code, Code.Aborted);
    });

    it("has its deadline enforced, and the handler's signal aborted", async () => {
      const client = createFixtureClient(transport());
      const before = seen.length;
      const err = await client.unary({ value: "sleep:5000" }, { timeoutMs: 100 }).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      assert.equal(err?.code, Code.DeadlineExceeded);
      // The client gives up at its deadline; the server's own timer fires at about the same time.
      await until(() => seen[before]?.signal.aborted === true);
      assert.ok([Code.DeadlineExceeded, Code.Canceled].includes(seen[before]?.signal.reason?.code));
    });
  });
}

describe("gRPC-Web text", () => {
  const text = (body: Buffer) => Buffer.from(body.toString("base64"));
  // Base64 segments, each padded, one after another: decoded one by one, as clients do.
  const untext = (body: Buffer) =>
    Buffer.concat(
      body
        .toString("latin1")
        .split(/(?<==)(?=[^=])/)
        .map((segment) => Buffer.from(segment, "base64")),
    );
  for (const version of ["2", "1.1"] as const) {
    it(`answers in base64 what binary gRPC-Web answers, HTTP/${version}`, async () => {
      const url = version === "2" ? server.url : server.http1Url;
      const call = (contentType: string, body: Buffer) =>
        rawRequest(url, {
          httpVersion: version,
          path: "/fixture.v1.FixtureService/ServerStream",
          headers: { "content-type": contentType },
          body,
        });
      const binary = await call("application/grpc-web+proto", frame("count:2"));
      // Padded segments one after the other, as a client encoding each message apart sends.
      const textual = await call("application/grpc-web-text", text(frame("count:2")));
      assert.equal(textual.status, 200);
      assert.equal(textual.fields["content-type"], "application/grpc-web-text+proto");
      assert.deepEqual(untext(textual.body), binary.body);
      assert.match(binary.body.toString("latin1"), /grpc-status: 0\r\n/);
    });
  }

  it("reads padded segments one after another, and refuses what is not base64", async () => {
    const two = Buffer.concat([text(frame("a")), text(frame("b"))]);
    const ok = await rawRequest(server.url, {
      httpVersion: "2",
      path: "/fixture.v1.FixtureService/ClientStream",
      headers: { "content-type": "application/grpc-web-text" },
      body: two,
    });
    const answer = untext(ok.body).toString("latin1");
    assert.match(answer, /a,b/);
    assert.match(answer, /grpc-status: 0/);
    const bad = await rawRequest(server.url, {
      httpVersion: "2",
      path: "/fixture.v1.FixtureService/Unary",
      headers: { "content-type": "application/grpc-web-text" },
      body: Buffer.from("not base64!"),
    });
    const trailer = untext(bad.body).toString("latin1");
    assert.match(trailer, new RegExp(`grpc-status: ${Code.InvalidArgument}`));
    assert.match(decodeURIComponent(trailer), /a grpc-web-text body must be base64/);
  });
});

describe("response headers on the wire", () => {
  // Raw HTTP/2 streams are answered with Node's raw header form, HTTP/1.1 through node:http: a
  // name set twice keeps both values, alone or with a trailers-only error.
  const json = Buffer.from('"cookies:v"'); // a StringValue in JSON
  const cases: [string, "2" | "1.1", string, Buffer, string][] = [
    ["gRPC", "2", "application/grpc", frame("cookies:v"), "application/grpc+proto"],
    ["Connect JSON", "2", "application/json", json, "application/json"],
    ["Connect JSON", "1.1", "application/json", json, "application/json"],
    ["gRPC-Web", "1.1", "application/grpc-web", frame("cookies:v"), "application/grpc-web+proto"],
  ];
  for (const [name, version, contentType, body, answered] of cases) {
    it(`${name} over HTTP/${version} sends every value of a repeated header, and a date`, async () => {
      const answer = await rawRequest(version === "2" ? server.url : server.http1Url, {
        httpVersion: version,
        path: "/fixture.v1.FixtureService/Unary",
        headers: { "content-type": contentType, te: "trailers" },
        body,
      });
      assert.equal(answer.status, 200, answer.body.toString());
      assert.equal(answer.fields["set-cookie"], "a=1, b=2");
      assert.equal(answer.fields["x-fixture"], "v");
      assert.equal(answer.fields["content-type"], answered);
      assert.ok(Math.abs(Date.parse(answer.date ?? "") - Date.now()) < 5_000, answer.date);
    });
  }

  // Node refuses a second date (a single-value field): the call would never be answered.
  it("sends one date over HTTP/2: the handler's when it set one, else the engine's", {
    timeout: 10_000,
  }, async () => {
    const dates = (text: string) =>
      new Promise<string[]>((resolve, reject) => {
        const session = http2.connect(server.url);
        session.on("error", reject);
        const req = session.request({
          ":method": "POST",
          ":path": "/fixture.v1.FixtureService/Unary",
          "content-type": "application/grpc",
          te: "trailers",
        });
        // Not answered: the session is let go, so that the server can close.
        const timer = setTimeout(() => {
          session.destroy();
          reject(new Error("no answer in 5 s"));
        }, 5_000);
        req.on("response", (_headers, _flags, raw: string[]) => {
          clearTimeout(timer);
          resolve(raw.filter((_, i) => i % 2 === 1 && raw[i - 1] === "date"));
          req.resume();
        });
        req.on("error", () => {});
        req.on("close", () => {
          session.close();
          reject(new Error(`no answer: stream closed with code ${req.rstCode}`));
        });
        req.end(frame(text));
      });
    assert.deepEqual(await dates("dated"), ["Tue, 01 Jan 2030 00:00:00 GMT"]);
    const [own, ...more] = await dates("plain");
    assert.deepEqual(more, []);
    assert.ok(Math.abs(Date.parse(own ?? "") - Date.now()) < 5_000, own);
  });

  it("leaves out over HTTP/2 the connection-specific fields a handler set, and answers", async () => {
    const grpc = await rawCall(
      server.url,
      "/fixture.v1.FixtureService/Unary",
      {},
      frame("hop-by-hop:v"),
    );
    assert.equal(grpc.trailers["grpc-status"], "0");
    assert.equal(grpc.fields["x-fixture"], "v");
    assert.equal(grpc.fields["x-fixture-trailer"], "v");
    for (const name of ["connection", "keep-alive", "transfer-encoding"]) {
      assert.equal(grpc.fields[name], undefined, name);
    }
    const connect = await rawRequest(server.url, {
      httpVersion: "2",
      path: "/fixture.v1.FixtureService/Unary",
      headers: { "content-type": "application/json" },
      body: Buffer.from('"hop-by-hop:v"'),
    });
    assert.equal(connect.status, 200, connect.body.toString());
    assert.equal(connect.fields["x-fixture"], "v");
    assert.equal(connect.fields.connection, undefined);
    // Over HTTP/1.1 they are the connection's business, and go out as set.
    const http1 = await rawRequest(server.http1Url, {
      httpVersion: "1.1",
      path: "/fixture.v1.FixtureService/Unary",
      headers: { "content-type": "application/json" },
      body: Buffer.from('"hop-by-hop:v"'),
    });
    assert.equal(http1.status, 200);
    assert.equal(http1.fields["x-fixture"], "v");
  });

  it("a trailers-only gRPC error keeps the status once, after the handler's headers", async () => {
    const answer = await rawCall(
      server.url,
      "/fixture.v1.FixtureService/Unary",
      {},
      frame("error:NotFound:gone"),
    );
    assert.equal(answer.status, 200);
    assert.equal(answer.trailers["grpc-status"], String(Code.NotFound));
    assert.equal(answer.trailers["grpc-message"], "gone");
    assert.equal(answer.body.length, 0);
  });
});

describe("deadlines and cancellation on every protocol", () => {
  it("a Connect deadline shorter than a delayed body fires while the body is awaited", async () => {
    const started = performance.now();
    const answer = await rawRequestSlowBody(server.http1Url, 80, 1000);
    const ms = performance.now() - started;
    assert.equal(answer.status, 504);
    assert.match(answer.body, /deadline_exceeded/);
    assert.ok(ms < 900, `answered after ${ms} ms, before the body came`);
  });

  it("a client that goes away mid-stream aborts the handler's signal", async () => {
    const client = createFixtureClient(
      createConnectTransport({ baseUrl: server.url, httpVersion: "2" }),
    );
    const before = seen.length;
    const controller = new AbortController();
    const it = client.bidi(values("x", "sleep:10000"), { signal: controller.signal });
    const first = await it[Symbol.asyncIterator]().next();
    assert.equal(first.value?.value, "x");
    controller.abort();
    await until(() => seen[before]?.signal.aborted === true);
    assert.equal(seen[before]?.signal.reason?.code, Code.Canceled);
  });
});

/** A Connect unary POST over HTTP/1.1 whose body comes only after `delayMs`. */
async function rawRequestSlowBody(
  url: string,
  timeoutMs: number,
  delayMs: number,
): Promise<{ status: number; body: string }> {
  const http = await import("node:http");
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/fixture.v1.FixtureService/Unary`, {
      method: "POST",
      agent: false,
      headers: { "content-type": "application/json", "connect-timeout-ms": String(timeoutMs) },
    });
    req.on("error", reject);
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
      );
    });
    req.flushHeaders();
    setTimeout(() => req.destroyed || req.end('"late"'), delayMs).unref();
  });
}
