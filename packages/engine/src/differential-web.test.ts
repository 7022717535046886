import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { Code } from "@connectrpc/connect";
import { observe, readMaxBytes, type Side, startSides } from "./testing/differential.ts";
import { frame } from "./testing/fixture.ts";

// gRPC-Web and Connect, over HTTP/2 and HTTP/1.1: the engine against connect-node's adapter, as
// differential.test.ts does for gRPC. Every case goes to both, and everything must be the same
// but what the engine's README lists as different by design (tested apart below).

type Request = Parameters<typeof observe>[1];
type Case = [name: string, request: Omit<Request, "httpVersion">];

const method = (name: string) => `/fixture.v1.FixtureService/${name}`;
const frames = (...texts: string[]) => Buffer.concat(texts.map(frame));
const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const jsonFrame = (text: string) => envelope(0, json(text));
const proto = (text: string) => frame(text).subarray(5);
function envelope(flags: number, data: Buffer): Buffer {
  const out = Buffer.alloc(5 + data.length);
  out[0] = flags;
  out.writeUInt32BE(data.length, 1);
  data.copy(out, 5);
  return out;
}
const codes = Object.values(Code).filter(
  (c): c is Code => typeof c === "number" && (c as number) !== 0,
);

const web = (headers: Record<string, string> = {}) => ({
  "content-type": "application/grpc-web+proto",
  "x-grpc-web": "1",
  ...headers,
});

const grpcWebCases: Case[] = [
  ["unary", { path: method("Unary"), headers: web(), body: frame("hello") }],
  ...codes.map(
    (code): Case => [
      `unary error ${Code[code]}`,
      { path: method("Unary"), headers: web(), body: frame(`error:${Code[code]}:it failed`) },
    ],
  ),
  ["unary plain error", { path: method("Unary"), headers: web(), body: frame("plain-error") }],
  [
    "interceptor error",
    { path: method("Unary"), headers: web({ "x-fail": "no" }), body: frame("x") },
  ],
  ["response header", { path: method("Unary"), headers: web(), body: frame("header:h1") }],
  ["response trailer", { path: method("Unary"), headers: web(), body: frame("trailer:t1") }],
  [
    "request metadata, ASCII and binary",
    {
      path: method("Unary"),
      headers: web({ "x-ascii": "a b", "x-data-bin": "AAEC" }),
      body: frame("hi"),
    },
  ],
  [
    "unary, bare content type",
    {
      path: method("Unary"),
      headers: web({ "content-type": "application/grpc-web" }),
      body: frame("a"),
    },
  ],
  [
    "unary in JSON",
    {
      path: method("Unary"),
      headers: web({ "content-type": "application/grpc-web+json" }),
      body: jsonFrame("hello"),
    },
  ],
  ["server stream", { path: method("ServerStream"), headers: web(), body: frame("count:3") }],
  [
    "server stream failing midway",
    { path: method("ServerStream"), headers: web(), body: frame("error:Aborted:midway") },
  ],
  ["client stream", { path: method("ClientStream"), headers: web(), body: frames("a", "b") }],
  [
    "client stream, no messages",
    { path: method("ClientStream"), headers: web(), body: Buffer.alloc(0) },
  ],
  [
    "gzip request",
    {
      path: method("Unary"),
      headers: web({ "grpc-encoding": "gzip" }),
      body: envelope(1, gzipSync(proto("zipped"))),
    },
  ],
  [
    "gzip response",
    {
      path: method("Unary"),
      headers: web({ "grpc-accept-encoding": "gzip" }),
      body: frame("z".repeat(1000)),
    },
  ],
  [
    "unsupported encoding",
    { path: method("Unary"), headers: web({ "grpc-encoding": "snappy" }), body: frame("x") },
  ],
  [
    "message at the limit",
    { path: method("Unary"), headers: web(), body: frame("m".repeat(readMaxBytes - 3)) },
  ],
  [
    "message one byte over",
    { path: method("Unary"), headers: web(), body: frame("m".repeat(readMaxBytes - 2)) },
  ],
  ["truncated", { path: method("Unary"), headers: web(), body: frame("hello").subarray(0, 8) }],
  ["empty body", { path: method("Unary"), headers: web(), body: Buffer.alloc(0) }],
  [
    "invalid grpc-timeout",
    { path: method("Unary"), headers: web({ "grpc-timeout": "soon" }), body: frame("x") },
  ],
  [
    "wrong content type",
    { path: method("Unary"), headers: web({ "content-type": "text/plain" }), body: frame("x") },
  ],
  ["PUT", { method: "PUT", path: method("ServerStream"), headers: web(), body: frame("x") }],
];

const unaryJson = (headers: Record<string, string> = {}) => ({
  "content-type": "application/json",
  ...headers,
});
const stream = (headers: Record<string, string> = {}) => ({
  "content-type": "application/connect+proto",
  ...headers,
});

const connectCases: Case[] = [
  ["unary JSON", { path: method("Unary"), headers: unaryJson(), body: json("hello") }],
  [
    "unary proto",
    {
      path: method("Unary"),
      headers: { "content-type": "application/proto" },
      body: proto("hello"),
    },
  ],
  ...codes.map(
    (code): Case => [
      `unary error ${Code[code]}`,
      { path: method("Unary"), headers: unaryJson(), body: json(`error:${Code[code]}:it failed`) },
    ],
  ),
  ["unary plain error", { path: method("Unary"), headers: unaryJson(), body: json("plain-error") }],
  [
    "interceptor error",
    { path: method("Unary"), headers: unaryJson({ "x-fail": "no" }), body: json("x") },
  ],
  [
    "response header and trailer",
    { path: method("Unary"), headers: unaryJson(), body: json("trailer:t1") },
  ],
  [
    "request metadata, ASCII and binary",
    {
      path: method("Unary"),
      headers: unaryJson({ "x-ascii": "a b", "x-data-bin": "AAEC" }),
      body: json("hi"),
    },
  ],
  [
    "gzip request",
    {
      path: method("Unary"),
      headers: unaryJson({ "content-encoding": "gzip" }),
      body: gzipSync(json("zipped")),
    },
  ],
  [
    "gzip response",
    {
      path: method("Unary"),
      headers: unaryJson({ "accept-encoding": "gzip" }),
      body: json("z".repeat(1100)),
    },
  ],
  [
    "unsupported encoding",
    {
      path: method("Unary"),
      headers: unaryJson({ "content-encoding": "snappy" }),
      body: json("x"),
    },
  ],
  [
    "message at the limit",
    { path: method("Unary"), headers: unaryJson(), body: json("m".repeat(readMaxBytes - 2)) },
  ],
  [
    "message one byte over",
    { path: method("Unary"), headers: unaryJson(), body: json("m".repeat(readMaxBytes - 1)) },
  ],
  ["malformed JSON", { path: method("Unary"), headers: unaryJson(), body: Buffer.from("{nope") }],
  [
    "empty proto body",
    {
      path: method("Unary"),
      headers: { "content-type": "application/proto" },
      body: Buffer.alloc(0),
    },
  ],
  [
    "invalid timeout",
    {
      path: method("Unary"),
      headers: unaryJson({ "connect-timeout-ms": "soon" }),
      body: json("x"),
    },
  ],
  [
    "GET in JSON",
    { method: "GET", path: `${method("Unary")}?connect=v1&encoding=json&message=%22got%22` },
  ],
  [
    "GET in proto, base64",
    {
      method: "GET",
      path: `${method("Unary")}?encoding=proto&base64=1&message=${proto("got").toString("base64url")}`,
    },
  ],
  ["GET without an encoding", { method: "GET", path: `${method("Unary")}?message=%22got%22` }],
  ["GET of a streaming method", { method: "GET", path: `${method("ServerStream")}?encoding=json` }],
  ["server stream", { path: method("ServerStream"), headers: stream(), body: frame("count:3") }],
  [
    "server stream in JSON",
    {
      path: method("ServerStream"),
      headers: stream({ "content-type": "application/connect+json" }),
      body: jsonFrame("count:2"),
    },
  ],
  [
    "server stream failing midway, with a trailer",
    { path: method("ServerStream"), headers: stream(), body: frame("error:Aborted:midway") },
  ],
  ["client stream", { path: method("ClientStream"), headers: stream(), body: frames("a", "b") }],
  [
    "client stream with an end-of-stream message",
    {
      path: method("ClientStream"),
      headers: stream(),
      body: Buffer.concat([frames("a"), envelope(2, json({}))]),
    },
  ],
  [
    "stream interceptor error",
    { path: method("ServerStream"), headers: stream({ "x-fail": "no" }), body: frame("x") },
  ],
  [
    "stream gzip both ways",
    {
      path: method("ServerStream"),
      headers: stream({ "connect-content-encoding": "gzip", "connect-accept-encoding": "gzip" }),
      body: envelope(1, gzipSync(proto(`count:2${" ".repeat(900)}`))),
    },
  ],
  [
    "stream gzip bomb",
    {
      path: method("ServerStream"),
      headers: stream({ "connect-content-encoding": "gzip" }),
      body: envelope(1, gzipSync(Buffer.alloc(10 * 1024 * 1024))),
    },
  ],
  [
    "stream content type to a unary method",
    { path: method("Unary"), headers: stream(), body: frame("x") },
  ],
  [
    "unary content type to a stream method",
    { path: method("ServerStream"), headers: unaryJson(), body: json("x") },
  ],
  ["no content type", { path: method("Unary"), body: json("x") }],
];

for (const version of ["2", "1.1"] as const) {
  describe(`engine against connect-node's adapter, HTTP/${version}`, () => {
    let sides: { engine: Side; connect: Side };
    before(async () => {
      sides = await startSides(version);
    });
    after(async () => {
      await sides.engine.close();
      await sides.connect.close();
    });

    const compare = async (request: Omit<Request, "httpVersion">) => {
      const full = { ...request, httpVersion: version };
      const engine = await observe(sides.engine, full);
      const connect = await observe(sides.connect, full);
      // By design (see the README): gRPC-Web answers name the compressions the engine accepts,
      // and a 405 names the methods allowed.
      if (engine.answer.fields["grpc-accept-encoding"] === "gzip") {
        delete engine.answer.fields["grpc-accept-encoding"];
      }
      if (engine.answer.status === 405) delete engine.answer.fields.allow;
      assert.deepEqual(engine, connect);
    };

    for (const [name, request] of grpcWebCases) it(`gRPC-Web: ${name}`, () => compare(request));
    for (const [name, request] of connectCases) it(`Connect: ${name}`, () => compare(request));
    it("bidi", () => compare({ path: method("Bidi"), headers: stream(), body: frames("x", "y") }));
  });
}
