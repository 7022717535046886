import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { Code } from "@connectrpc/connect";
import { observe, readMaxBytes, type Side, startSides } from "./testing/differential.ts";
import { frame } from "./testing/fixture.ts";

// The engine against its oracle, connect-node's own adapter: the same fixture routes and the same
// recording interceptor behind both, the same raw requests to both, and everything compared:
// status, headers and trailers (together: an error before any message may come trailers-only),
// body bytes, and what the interceptor and the handler saw. Differences by design are listed in
// the engine's README and tested apart at the end. gRPC here; gRPC-Web and Connect, over HTTP/2
// and HTTP/1.1, in differential-web.test.ts.

let engineSide: Side;
let connectSide: Side;

before(async () => {
  ({ engine: engineSide, connect: connectSide } = await startSides("2"));
});
after(async () => {
  await engineSide.close();
  await connectSide.close();
});

const grpcRequest = (path: string, headers: Record<string, string>, body: Buffer) => ({
  httpVersion: "2" as const,
  path,
  headers: { "content-type": "application/grpc", te: "trailers", ...headers },
  body,
});

/** Both sides' outcome and views of one case. */
async function both(path: string, headers: Record<string, string>, body: Buffer) {
  const request = grpcRequest(`/fixture.v1.FixtureService/${path}`, headers, body);
  return [await observe(engineSide, request), await observe(connectSide, request)] as const;
}

const frames = (...texts: string[]) => Buffer.concat(texts.map(frame));
const gzipFrame = (text: string) => {
  const plain = frame(text).subarray(5);
  const zipped = gzipSync(plain);
  const out = Buffer.alloc(5 + zipped.length);
  out[0] = 1;
  out.writeUInt32BE(zipped.length, 1);
  zipped.copy(out, 5);
  return out;
};
const prefixOnly = (length: number) => {
  const out = Buffer.alloc(5);
  out.writeUInt32BE(length, 1);
  return out;
};

const codes = Object.values(Code).filter(
  (c): c is Code => typeof c === "number" && (c as number) !== 0,
);

const cases: [string, string, Record<string, string>, Buffer][] = [
  ["unary success", "Unary", {}, frame("hello")],
  ...codes.map((code): [string, string, Record<string, string>, Buffer] => [
    `unary handler error ${Code[code]}`,
    "Unary",
    {},
    frame(`error:${Code[code]}:it failed`),
  ]),
  ["unary plain error", "Unary", {}, frame("plain-error")],
  ["unary interceptor error", "Unary", { "x-fail": "no" }, frame("hello")],
  ["unary response header", "Unary", {}, frame("header:h1")],
  ["unary response trailer", "Unary", {}, frame("trailer:t1")],
  [
    "unary request metadata, ASCII and binary",
    "Unary",
    { "x-ascii": "a b", "x-data-bin": "AAEC" },
    frame("hello"),
  ],
  ["server stream", "ServerStream", {}, frame("count:3")],
  ["server stream that fails after a message", "ServerStream", {}, frame("error:Aborted:midway")],
  ["server stream, message over the limit", "ServerStream", {}, frame("m".repeat(readMaxBytes))],
  ["server stream, two messages", "ServerStream", {}, frames("a", "b")],
  ["server stream, no message", "ServerStream", {}, Buffer.alloc(0)],
  ["client stream", "ClientStream", {}, frames("a", "b", "c")],
  [
    "client stream failing on its second message",
    "ClientStream",
    {},
    frames("a", "error:DataLoss:lost"),
  ],
  ["client stream, no messages", "ClientStream", {}, Buffer.alloc(0)],
  ["bidi", "Bidi", {}, frames("x", "y")],
  ["bidi interceptor error", "Bidi", { "x-fail": "no" }, frames("x")],
  ["gzip request", "Unary", { "grpc-encoding": "gzip" }, gzipFrame("zipped")],
  [
    "gzip response for a large message",
    "Unary",
    { "grpc-accept-encoding": "gzip" },
    frame("z".repeat(1000)),
  ],
  ["unsupported encoding", "Unary", { "grpc-encoding": "snappy" }, frame("hello")],
  ["compressed flag without an encoding", "Unary", {}, gzipFrame("zipped")],
  ["message at the limit", "Unary", {}, frame("m".repeat(readMaxBytes - 3))],
  ["message one byte over the limit", "Unary", {}, frame("m".repeat(readMaxBytes - 2))],
  ["declared oversize, not sent", "Unary", {}, prefixOnly(readMaxBytes * 1000)],
  ["truncated envelope", "Unary", {}, Buffer.from([0, 0, 0])],
  ["truncated payload", "Unary", {}, frame("hello").subarray(0, 8)],
  ["empty body", "Unary", {}, Buffer.alloc(0)],
  ["two messages to a unary method", "Unary", {}, frames("a", "b")],
  ["unparseable message", "Unary", {}, Buffer.from([0, 0, 0, 0, 3, 0x0f, 0xff, 0xff])],
  ["invalid grpc-timeout", "Unary", { "grpc-timeout": "soon" }, frame("hello")],
  ["a generous grpc-timeout", "Unary", { "grpc-timeout": "10S" }, frame("hello")],
];

describe("engine against connect-node's adapter, gRPC", () => {
  for (const [name, path, headers, body] of cases) {
    it(name, async () => {
      const [engine, connect] = await both(path, headers, body);
      // By design (see the README): the engine names the compressions it accepts in every answer.
      assert.equal(engine.answer.fields["grpc-accept-encoding"], "gzip");
      delete engine.answer.fields["grpc-accept-encoding"];
      assert.deepEqual(engine, connect);
    });
  }
});

describe("differences by design (see the README)", () => {
  it("an unknown method: HTTP 200 with grpc-status 12 here, HTTP 404 from connect-node", async () => {
    const request = grpcRequest("/fixture.v1.FixtureService/Nope", {}, frame("x"));
    const engine = (await observe(engineSide, request)).answer;
    const connect = (await observe(connectSide, request)).answer;
    assert.equal(engine.status, 200);
    assert.equal(engine.fields["grpc-status"], "12");
    assert.equal(
      decodeURIComponent(engine.fields["grpc-message"] ?? ""),
      "unknown method Nope for service fixture.v1.FixtureService",
    );
    assert.equal(connect.status, 404);
  });

  it("a deadline below a millisecond: expired at once here, the handler never runs", async () => {
    const engine = await observe(
      engineSide,
      grpcRequest("/fixture.v1.FixtureService/Unary", { "grpc-timeout": "1n" }, frame("x")),
    );
    assert.equal(engine.answer.fields["grpc-status"], String(Code.DeadlineExceeded));
    assert.deepEqual(engine.seen, []);
  });
});
