import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  createContextKey,
  createContextValues,
  type HandlerContext,
  type Interceptor,
} from "@connectrpc/connect";
import { compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import { createEngine } from "./engine.ts";
import { fixtureRoutes, frame, rawCall } from "./testing/fixture.ts";

// The engine against its oracle, connect-node's own adapter: the same fixture routes and the same
// recording interceptor behind both, the same raw HTTP/2 requests to both, and everything compared:
// status, headers and trailers (together: an error before any message may come trailers-only),
// body bytes, and what the interceptor and the handler saw. Differences by design are listed in
// the engine's README and tested apart at the end.

interface View {
  url: string;
  stream: boolean;
  header: [string, string][];
  timeout: boolean;
  values: string;
}

function recorder(views: View[]): Interceptor {
  return (next) => async (req) => {
    views.push({
      // The two servers listen on different ports.
      url: req.url.replace(/:\d+\//, ":PORT/"),
      stream: req.stream,
      // Transport headers differ by implementation only in what HTTP/2 adds (te, user-agent).
      header: [...req.header].filter(([k]) => k.startsWith("x-")),
      timeout: req.header.get("grpc-timeout") !== null,
      values: req.contextValues.get(tagKey),
    });
    if (req.header.get("x-fail") !== null) {
      throw new ConnectError(
        `refused by interceptor: ${req.header.get("x-fail")}`,
        Code.PermissionDenied,
        {
          "x-why": "because",
        },
      );
    }
    // Rebuilds the request, as an interceptor may.
    return next({ ...req, header: new Headers(req.header) });
  };
}

const tagKey = createContextKey("", { description: "tag" });
const readMaxBytes = 1024;

interface Side {
  url: string;
  views: View[];
  seen: HandlerContext[];
  close(): Promise<void>;
}

/** `server` listening on a free port of 127.0.0.1, as one side of the comparison. */
async function serve(
  server: http2.Http2Server,
  views: View[],
  seen: HandlerContext[],
): Promise<Side> {
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => sessions.add(s));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    views,
    seen,
    close: async () => {
      for (const s of sessions) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let engineSide: Side;
let connectSide: Side;

before(async () => {
  const common = (views: View[], seen: HandlerContext[]) => ({
    routes: fixtureRoutes(seen) as (router: ConnectRouter) => void,
    interceptors: [recorder(views)],
    contextValues: () => createContextValues().set(tagKey, "tagged"),
    readMaxBytes,
    writeMaxBytes: readMaxBytes * 4,
    acceptCompression: [compressionGzip],
  });
  {
    const views: View[] = [];
    const seen: HandlerContext[] = [];
    const engine = createEngine(common(views, seen));
    const server = http2.createServer();
    server.on("stream", (stream, headers) => {
      if (!engine.handleStream(stream, headers))
        stream.respond({ ":status": 415 }, { endStream: true });
    });
    engineSide = await serve(server, views, seen);
  }
  {
    const views: View[] = [];
    const seen: HandlerContext[] = [];
    const adapter = connectNodeAdapter({ ...common(views, seen), grpcWeb: false, connect: false });
    connectSide = await serve(http2.createServer(adapter), views, seen);
  }
});
after(async () => {
  await engineSide.close();
  await connectSide.close();
});

interface Outcome {
  status: number;
  fields: Record<string, string>;
  body: string;
}

/** One raw request; what came back, headers and trailers merged, `date` left out. */
async function call(
  url: string,
  path: string,
  headers: Record<string, string>,
  body: Buffer,
): Promise<Outcome> {
  const raw = await rawCall(url, path, headers, body);
  return { status: raw.status, fields: raw.fields, body: raw.body.toString("hex") };
}

/** Both sides' outcome and views of one case. */
async function both(path: string, headers: Record<string, string>, body: Buffer) {
  const method = `/fixture.v1.FixtureService/${path}`;
  const [e, c] = [engineSide, connectSide].map((side) => ({
    side,
    before: side.views.length,
    seen: side.seen.length,
  }));
  const engine = await call(engineSide.url, method, headers, body);
  const connect = await call(connectSide.url, method, headers, body);
  return {
    engine,
    connect,
    views: [engineSide.views.slice(e?.before), connectSide.views.slice(c?.before)] as const,
    seen: [engineSide.seen.slice(e?.seen), connectSide.seen.slice(c?.seen)] as const,
  };
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
      const { engine, connect, views, seen } = await both(path, headers, body);
      // By design (see the README): the engine names the compressions it accepts in every answer.
      assert.equal(engine.fields["grpc-accept-encoding"], "gzip");
      delete engine.fields["grpc-accept-encoding"];
      assert.deepEqual(engine, connect);
      assert.deepEqual(views[0], views[1]);
      assert.deepEqual(
        seen[0].map((ctx) => [ctx.protocolName, ctx.requestMethod, ctx.signal.aborted]),
        seen[1].map((ctx) => [ctx.protocolName, ctx.requestMethod, ctx.signal.aborted]),
      );
    });
  }
});

describe("differences by design (see the README)", () => {
  it("an unknown method: HTTP 200 with grpc-status 12 here, HTTP 404 from connect-node", async () => {
    const path = "/fixture.v1.FixtureService/Nope";
    const engine = await call(engineSide.url, path, {}, frame("x"));
    const connect = await call(connectSide.url, path, {}, frame("x"));
    assert.equal(engine.status, 200);
    assert.equal(engine.fields["grpc-status"], "12");
    assert.equal(connect.status, 404);
  });

  it("a deadline below a millisecond: expired at once here, the handler never runs", async () => {
    const before = engineSide.seen.length;
    const engine = await call(
      engineSide.url,
      "/fixture.v1.FixtureService/Unary",
      { "grpc-timeout": "1n" },
      frame("x"),
    );
    assert.equal(engine.fields["grpc-status"], String(Code.DeadlineExceeded));
    assert.equal(engineSide.seen.length, before);
  });
});
