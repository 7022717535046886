import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import { gunzipSync } from "node:zlib";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { compressionGzip, createGrpcTransport } from "@connectrpc/connect-node";
import {
  createFixtureClient,
  type FixtureClient,
  frame,
  rawCall,
  startEngineServer,
  until,
} from "./testing/fixture.ts";

let server: Awaited<ReturnType<typeof startEngineServer>>;
let client: FixtureClient;
const seen: HandlerContext[] = [];
const intercepted: { url: string; stream: boolean; aborted: () => boolean }[] = [];

// An interceptor that hands on a request object of its own, as an interceptor may.
const rebuild: Interceptor = (next) => (req) => {
  intercepted.push({
    url: new URL(req.url).pathname,
    stream: req.stream,
    aborted: () => req.signal.aborted,
  });
  return next({ ...req, header: new Headers(req.header) });
};

async function* values(...texts: string[]) {
  for (const value of texts) yield { value };
}

async function codeOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return "ok";
  } catch (err) {
    const e = ConnectError.from(err);
    return `${Code[e.code]}: ${e.rawMessage}`;
  }
}

before(async () => {
  server = await startEngineServer({ interceptors: [rebuild], seen, readMaxBytes: 1024 });
  client = createFixtureClient(createGrpcTransport({ baseUrl: server.url }));
});
after(() => server.close());

describe("engine, gRPC over HTTP/2", () => {
  it("serves every call kind through the interceptors, which may rebuild the request", async () => {
    assert.equal((await client.unary({ value: "hi" })).value, "hi");
    const streamed: string[] = [];
    for await (const m of client.serverStream({ value: "count:3" })) streamed.push(m.value);
    assert.deepEqual(streamed, ["0", "1", "2"]);
    assert.equal((await client.clientStream(values("a", "b", "c"))).value, "a,b,c");
    const echoed: string[] = [];
    for await (const m of client.bidi(values("x", "y"))) echoed.push(m.value);
    assert.deepEqual(echoed, ["x", "y"]);
    assert.deepEqual(
      intercepted.slice(-4).map((c) => [c.url, c.stream]),
      [
        ["/fixture.v1.FixtureService/Unary", false],
        ["/fixture.v1.FixtureService/ServerStream", true],
        ["/fixture.v1.FixtureService/ClientStream", true],
        ["/fixture.v1.FixtureService/Bidi", true],
      ],
    );
  });

  it("aborts the handler's signal once the call completes", async () => {
    await client.unary({ value: "done" });
    const ctx = seen.at(-1);
    assert.equal(ctx?.signal.aborted, true);
    assert.equal(intercepted.at(-1)?.aborted(), true);
  });

  it("answers errors with their code, message and metadata; a plain error as a bare internal error", async () => {
    assert.equal(
      await codeOf(client.unary({ value: "error:NotFound:no such thing" })),
      "NotFound: no such thing",
    );
    assert.equal(await codeOf(client.unary({ value: "plain-error" })), "Internal: internal error");
    assert.equal(
      await codeOf(client.clientStream(values("a", "error:FailedPrecondition:not now"))),
      "FailedPrecondition: not now",
    );
    let header: string | null = null;
    let trailer: string | null = null;
    await client.unary({ value: "header:h1" }, { onHeader: (h) => (header = h.get("x-fixture")) });
    await client.unary(
      { value: "trailer:t1" },
      { onTrailer: (t) => (trailer = t.get("x-fixture")) },
    );
    assert.equal(header, "h1");
    assert.equal(trailer, "t1");
  });

  it("enforces the client's deadline from the headers, 1 ns included, before the handler runs", async () => {
    const before = seen.length;
    const raw = await rawCall(
      server.url,
      "/fixture.v1.FixtureService/Unary",
      { "grpc-timeout": "1n" },
      frame("never"),
    );
    assert.equal(raw.trailers["grpc-status"], String(Code.DeadlineExceeded));
    assert.equal(seen.length, before, "the handler ran");
    assert.equal(
      await codeOf(client.unary({ value: "sleep:5000" }, { timeoutMs: 50 })),
      "DeadlineExceeded: the operation timed out",
    );
  });

  it("times out a call whose client delays the body past its deadline", async () => {
    const raw = await rawCall(
      server.url,
      "/fixture.v1.FixtureService/Unary",
      { "grpc-timeout": "50m" },
      frame("late"),
      { delayBodyMs: 2000 },
    );
    assert.equal(raw.trailers["grpc-status"], String(Code.DeadlineExceeded));
    assert.ok(raw.ms < 1500, `answered after ${raw.ms} ms`);
  });

  it("refuses a message declared larger than the limit at its prefix", async () => {
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(4 * 1024 * 1024 * 1024 - 1, 1);
    const raw = await rawCall(server.url, "/fixture.v1.FixtureService/Unary", {}, prefix, {
      keepOpen: true,
    });
    assert.equal(raw.trailers["grpc-status"], String(Code.ResourceExhausted));
    assert.match(
      decodeURIComponent(String(raw.trailers["grpc-message"])),
      /message size 4294967295 is larger than configured readMaxBytes 1024/,
    );
  });

  it("answers an unknown service or method with HTTP 200 and grpc-status 12", async () => {
    for (const [path, message] of [
      [
        "/fixture.v1.FixtureService/Nope",
        "unknown method Nope for service fixture.v1.FixtureService",
      ],
      ["/nope.v1.Nope/Call", "unknown method Call for service nope.v1.Nope"],
    ] as const) {
      const raw = await rawCall(server.url, path, {}, frame("x"));
      assert.equal(raw.status, 200);
      assert.equal(raw.trailers["grpc-status"], "12");
      assert.equal(decodeURIComponent(String(raw.trailers["grpc-message"])), message);
    }
    const long = await rawCall(server.url, `/x.v1.X/${"A".repeat(10_000)}`, {}, frame("x"));
    assert.equal(long.trailers["grpc-status"], "12");
    assert.ok(String(long.trailers["grpc-message"]).length < 400, "the path is echoed whole");
  });

  // grpc's C-core reads the answer's grpc-accept-encoding as what the server accepts; without it,
  // identity only (packages/server/src/grpcio.test.ts drives the server with C-core).
  it("names the compressions it accepts in every answer, and gzips a large one", async () => {
    const gzipping = await startEngineServer({ acceptCompression: [compressionGzip] });
    try {
      const large = "x".repeat(2000);
      const body = Buffer.from(
        toBinary(StringValueSchema, create(StringValueSchema, { value: large })),
      );
      const prefix = Buffer.alloc(5);
      prefix.writeUInt32BE(body.length, 1);
      const raw = await rawCall(
        gzipping.url,
        "/fixture.v1.FixtureService/Unary",
        { "grpc-accept-encoding": "gzip" },
        Buffer.concat([prefix, body]),
      );
      assert.equal(raw.trailers["grpc-status"], "0");
      assert.equal(raw.headers["grpc-encoding"], "gzip");
      assert.equal(raw.headers["grpc-accept-encoding"], "gzip");
      assert.equal(raw.body[0], 1, "the message's compressed flag");
      const answer = fromBinary(StringValueSchema, gunzipSync(raw.body.subarray(5)));
      assert.equal(answer.value, large);
      // An answer that is an error alone (trailers-only) names them too.
      const failed = await rawCall(
        gzipping.url,
        "/fixture.v1.FixtureService/Unary",
        {},
        frame("error:NotFound:nope"),
      );
      assert.equal(failed.trailers["grpc-status"], "5");
      assert.equal(failed.headers["grpc-accept-encoding"], "gzip");
    } finally {
      await gzipping.close();
    }
    // An engine that accepts no compression says nothing.
    const plain = await rawCall(server.url, "/fixture.v1.FixtureService/Unary", {}, frame("x"));
    assert.equal(plain.trailers["grpc-status"], "0");
    assert.equal(plain.headers["grpc-accept-encoding"], undefined);
  });

  it("aborts the handler's signal when the client cancels a stream", async () => {
    const controller = new AbortController();
    const it = client
      .bidi(values("a", "sleep:10000"), { signal: controller.signal })
      [Symbol.asyncIterator]();
    assert.equal((await it.next()).value?.value, "a");
    const ctx = seen.at(-1);
    controller.abort();
    await assert.rejects(it.next());
    await until(() => ctx?.signal.aborted === true);
    assert.equal(ctx?.signal.aborted, true);
  });

  for (const how of ["resets the stream", "drops the connection"] as const) {
    it(`cancels a unary call whose client ${how} while it runs`, async () => {
      const session = http2.connect(server.url);
      session.on("error", () => {});
      const before = seen.length;
      const req = session.request({
        ":method": "POST",
        ":path": "/fixture.v1.FixtureService/Unary",
        "content-type": "application/grpc",
        te: "trailers",
      });
      req.on("error", () => {});
      req.end(frame("sleep:10000"));
      await until(() => seen.length > before);
      const ctx = seen[before];
      assert.equal(ctx?.signal.aborted, false);
      if (how === "resets the stream") req.close(http2.constants.NGHTTP2_CANCEL);
      else session.destroy();
      await until(() => ctx?.signal.aborted === true);
      assert.equal(ctx?.signal.aborted, true);
      assert.equal(ConnectError.from(ctx?.signal.reason).code, Code.Canceled);
      session.destroy();
    });
  }
});

describe("engine, request bytes buffered per connection", () => {
  it("refuses calls past the connection's budget instead of holding their bodies", async () => {
    const small = await startEngineServer({
      readMaxBytes: 1024 * 1024,
      bufferedBytesPerConnection: 2 * 1024 * 1024,
    });
    try {
      const session = http2.connect(small.url);
      session.on("error", () => {});
      // Ten calls on one connection, each sending 900 KiB of a 1 MiB message and then waiting:
      // the connection may hold 2 MiB, so most are refused at once, whoever the caller is.
      const outcomes = await Promise.all(
        Array.from(
          { length: 10 },
          () =>
            new Promise<string>((resolve) => {
              const req = session.request({
                ":method": "POST",
                ":path": "/fixture.v1.FixtureService/Unary",
                "content-type": "application/grpc",
                te: "trailers",
              });
              const prefix = Buffer.alloc(5);
              prefix.writeUInt32BE(1024 * 1024, 1);
              req.write(Buffer.concat([prefix, Buffer.alloc(900 * 1024)]));
              const status = (h: http2.IncomingHttpHeaders) => {
                if (h["grpc-status"] !== undefined) {
                  resolve(`${h["grpc-status"]} ${decodeURIComponent(String(h["grpc-message"]))}`);
                }
              };
              req.on("response", status);
              req.on("trailers", status);
              req.on("error", () => resolve("reset"));
              req.on("data", () => {});
              setTimeout(() => resolve("still open"), 2000).unref();
            }),
        ),
      );
      const refused = outcomes.filter((o) =>
        o.startsWith(`${Code.ResourceExhausted} this connection is holding its limit`),
      );
      assert.ok(refused.length >= 7, outcomes.join("\n"));
      session.destroy();
    } finally {
      await small.close();
    }
  });
});

describe("engine, the request gate", () => {
  it("refuses a call on its headers, before any of its body is read", async () => {
    const gateSeen: HandlerContext[] = [];
    const handlerSeen: HandlerContext[] = [];
    const gated = await startEngineServer({
      seen: handlerSeen,
      requestGate: (ctx) => {
        gateSeen.push(ctx);
        if (ctx.requestHeader.get("x-key") !== "open sesame") {
          throw new ConnectError("send x-key", Code.Unauthenticated);
        }
      },
    });
    try {
      // A body that never ends: the answer must come from the headers alone.
      const prefix = Buffer.alloc(5);
      prefix.writeUInt32BE(1000, 1);
      const refused = await rawCall(gated.url, "/fixture.v1.FixtureService/Unary", {}, prefix, {
        keepOpen: true,
      });
      assert.equal(refused.trailers["grpc-status"], String(Code.Unauthenticated));
      assert.equal(decodeURIComponent(String(refused.trailers["grpc-message"])), "send x-key");
      assert.equal(handlerSeen.length, 0);
      assert.equal(new URL(gateSeen[0]?.url ?? "").pathname, "/fixture.v1.FixtureService/Unary");
      const passed = await rawCall(
        gated.url,
        "/fixture.v1.FixtureService/Unary",
        { "x-key": "open sesame" },
        frame("in"),
      );
      assert.equal(passed.trailers["grpc-status"], "0");
      assert.equal(handlerSeen.length, 1);
    } finally {
      await gated.close();
    }
  });

  it("passes a refused call through the interceptors, unread, and never answers it OK", async () => {
    const handlerSeen: HandlerContext[] = [];
    const chainSaw: unknown[] = [];
    const gated = await startEngineServer({
      seen: handlerSeen,
      requestGate: () => {
        throw new ConnectError("refused at the gate", Code.Unauthenticated);
      },
      interceptors: [
        // A logging interceptor sees the refusal; one that answers by itself cannot let it in.
        (next) => async (req) => {
          chainSaw.push([
            req.method.name,
            req.stream ? "stream" : (req.message as unknown as { value: string }).value,
          ]);
          return next(req);
        },
        () => async (req) =>
          ({
            stream: false,
            message: req.message,
            header: new Headers(),
            trailer: new Headers(),
          }) as never,
      ],
    });
    try {
      for (const path of ["Unary", "ServerStream"]) {
        const answer = await rawCall(
          gated.url,
          `/fixture.v1.FixtureService/${path}`,
          {},
          frame("x"),
        );
        assert.equal(answer.trailers["grpc-status"], String(Code.Unauthenticated), path);
        assert.equal(
          decodeURIComponent(String(answer.trailers["grpc-message"])),
          "refused at the gate",
        );
      }
      assert.equal(handlerSeen.length, 0);
      // The unary call's message was never read: the chain saw an empty one.
      assert.deepEqual(chainSaw, [
        ["Unary", ""],
        ["ServerStream", "stream"],
      ]);
    } finally {
      await gated.close();
    }
  });
});

describe("engine, refusals before the interceptors", () => {
  it("tells onRefusal of each call the interceptors never saw, and of no other", async () => {
    const refused: string[] = [];
    const chained: string[] = [];
    const refusing = await startEngineServer({
      readMaxBytes: 64,
      onRefusal: (method, error) => refused.push(`${method.name} ${Code[error.code]}`),
      interceptors: [
        (next) => (req) => {
          chained.push(req.method.name);
          return next(req);
        },
      ],
      requestGate: (ctx) => {
        if (ctx.requestHeader.get("x-refuse") !== null) {
          throw new ConnectError("refused at the gate", Code.Unauthenticated);
        }
      },
    });
    try {
      const call = (headers: Record<string, string>, body: Buffer, path = "Unary") =>
        rawCall(refusing.url, `/fixture.v1.FixtureService/${path}`, headers, body);
      await call({}, frame("m".repeat(100))); // over the limit: refused unread
      await call({ "grpc-timeout": "soon" }, frame("x")); // a bad timeout
      await call({}, frame("x").subarray(0, 6)); // a truncated body
      await call({}, frame("error:NotFound:gone")); // the handler's error: the chain saw it
      await call({ "x-refuse": "1" }, frame("x")); // the gate's: it passed the chain
      await call({}, frame("m".repeat(100)), "ServerStream"); // read inside the chain
      assert.deepEqual(refused, [
        "Unary ResourceExhausted",
        "Unary InvalidArgument",
        "Unary InvalidArgument",
      ]);
      assert.deepEqual(chained, ["Unary", "Unary", "ServerStream"]);
    } finally {
      await refusing.close();
    }
  });
});
