import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, type Message } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  createContextKey,
  createContextValues,
  type HandlerContext,
  type Interceptor,
} from "@connectrpc/connect";
import { createEngine, type EngineOptions } from "./engine.ts";
import type { InvokeOptions } from "./invoke.ts";
import { PlainHeaders } from "./plain-headers.ts";
import { fixtureRoutes } from "./testing/fixture.ts";

const peerKey = createContextKey("", { description: "peer" });
const tenantKey = createContextKey("", { description: "tenant, from a header" });
const deadlineKey = createContextKey(0, { description: "default deadline" });

function setup(options: Omit<EngineOptions, "routes"> = {}) {
  const seen: HandlerContext[] = [];
  const views: { url: string; method: string; header: string | null; peer: string }[] = [];
  const signals: AbortSignal[] = [];
  // Hands on a request of its own making: per-call state must not live on the request object.
  const rebuilding: Interceptor = (next) => (req) => {
    views.push({
      url: req.url,
      method: req.requestMethod,
      header: req.header.get("x-caller"),
      peer: req.contextValues.get(peerKey),
    });
    signals.push(req.signal);
    return next({ ...req });
  };
  const engine = createEngine({
    routes: fixtureRoutes(seen),
    interceptors: [rebuilding, ...(options.interceptors ?? [])],
    contextValues: (req) =>
      createContextValues()
        .set(peerKey, req.socket.remoteAddress ?? "")
        .set(tenantKey, String(req.headers["x-tenant"] ?? "")),
    ...options,
  });
  return { engine, seen, views, signals };
}

function callOf(text: string, more: Partial<InvokeOptions> = {}): InvokeOptions {
  const header = new PlainHeaders();
  header.set("x-caller", "rest-test");
  return {
    protocolName: "rest",
    header,
    headers: { "x-tenant": "acme", "x-caller": "rest-test" },
    peer: "203.0.113.9",
    url: "http://127.0.0.1/api/v1/things/1",
    requestMethod: "GET",
    message: create(StringValueSchema, { value: text }),
    ...more,
  };
}

const textOf = (message: Message | undefined) => (message as { value?: string })?.value;

async function collect(messages: AsyncIterable<Message>): Promise<string[]> {
  const out: string[] = [];
  for await (const m of messages) out.push(textOf(m) ?? "");
  return out;
}

describe("Engine.invoke", () => {
  it("runs a unary call through the chain with the call's state, and ends it", async () => {
    const { engine, seen, views } = setup();
    const result = await engine.invoke("/fixture.v1.FixtureService/Unary", callOf("header:h1"));
    assert.equal(result.error, undefined);
    assert.equal(result.stream, false);
    assert.equal(textOf(result.message), "header:h1");
    assert.equal(result.header.get("x-fixture"), "h1");
    assert.deepEqual(views, [
      {
        url: "http://127.0.0.1/api/v1/things/1",
        method: "GET",
        header: "rest-test",
        peer: "203.0.113.9",
      },
    ]);
    const ctx = seen[0];
    assert.equal(ctx?.protocolName, "rest");
    assert.equal(ctx?.values.get(tenantKey), "acme");
    assert.equal(ctx?.timeoutMs(), undefined);
    assert.equal(ctx?.signal.aborted, true, "the signal aborts when the call completes");
  });

  it("takes its method as an entry of `methods` too", async () => {
    const { engine } = setup();
    const entry = engine.methods.get("/fixture.v1.FixtureService/Unary");
    assert.ok(entry);
    const result = await engine.invoke(entry, callOf("hi"));
    assert.equal(textOf(result.message as Message), "hi");
  });

  it("answers a server stream as it comes, and ends the call when it ends", async () => {
    const { engine, seen } = setup();
    const result = await engine.invoke(
      "/fixture.v1.FixtureService/ServerStream",
      callOf("count:3"),
    );
    assert.equal(result.stream, true);
    assert.deepEqual(await collect(result.message as AsyncIterable<Message>), ["0", "1", "2"]);
    assert.equal(seen[0]?.signal.aborted, true);
  });

  it("cancels a stream whose answers are left, even before the first is read", async () => {
    const { engine, signals } = setup();
    const result = await engine.invoke(
      "/fixture.v1.FixtureService/ServerStream",
      callOf("count:3"),
    );
    assert.equal(result.stream, true);
    assert.equal(signals[0]?.aborted, false);
    const messages = (result.message as AsyncIterable<Message>)[Symbol.asyncIterator]();
    await messages.return?.();
    const reason = signals[0]?.reason;
    assert.ok(reason instanceof ConnectError);
    assert.equal(reason.code, Code.Canceled);
  });

  it("takes a client-streaming method's messages as an iterable", async () => {
    const { engine } = setup();
    async function* messages() {
      yield create(StringValueSchema, { value: "a" });
      yield create(StringValueSchema, { value: "b" });
    }
    const result = await engine.invoke(
      "/fixture.v1.FixtureService/ClientStream",
      callOf("", { message: messages() }),
    );
    assert.equal(result.stream, true);
    assert.deepEqual(await collect(result.message as AsyncIterable<Message>), ["a,b"]);
  });

  it("answers failures with the error as clients get it, and the headers set", async () => {
    const { engine, seen } = setup();
    const notFound = await engine.invoke(
      "/fixture.v1.FixtureService/Unary",
      callOf("error:NotFound:no such thing"),
    );
    assert.ok(notFound.error instanceof ConnectError);
    assert.equal(notFound.error.code, Code.NotFound);
    assert.equal(notFound.error.rawMessage, "no such thing");
    assert.ok(seen[0]?.signal.aborted);
    const plain = await engine.invoke("/fixture.v1.FixtureService/Unary", callOf("plain-error"));
    assert.equal(plain.error?.code, Code.Internal);
    assert.equal(plain.error?.rawMessage, "internal error");
    const midway = await engine.invoke(
      "/fixture.v1.FixtureService/ServerStream",
      callOf("error:Unavailable:gone"),
    );
    assert.equal(midway.stream, true);
    await assert.rejects(collect(midway.message as AsyncIterable<Message>), (err) => {
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code, Code.Unavailable);
      return true;
    });
    const unknown = await engine.invoke("/fixture.v1.FixtureService/Nope", callOf("x"));
    assert.equal(unknown.error?.code, Code.Unimplemented);
    assert.match(
      unknown.error?.rawMessage ?? "",
      /unknown method \/fixture.v1.FixtureService\/Nope/,
    );
  });

  it("reads the message after the request gate, and not at all when it refuses", async () => {
    const order: string[] = [];
    const { engine } = setup({
      requestGate: (ctx) => {
        order.push(`gate ${ctx.requestHeader.get("x-caller")}`);
        if (ctx.requestHeader.get("authorization") === null) {
          throw new ConnectError("no token", Code.Unauthenticated);
        }
      },
    });
    const read = () => {
      order.push("read");
      return Promise.resolve(create(StringValueSchema, { value: "body" }));
    };
    const refused = await engine.invoke(
      "/fixture.v1.FixtureService/Unary",
      callOf("", { message: read }),
    );
    assert.equal(refused.error?.code, Code.Unauthenticated);
    assert.deepEqual(order, ["gate rest-test"]);
    const header = new PlainHeaders();
    header.set("x-caller", "rest-test");
    header.set("authorization", "Bearer t");
    const letThrough = await engine.invoke(
      "/fixture.v1.FixtureService/Unary",
      callOf("", { message: read, header }),
    );
    assert.equal(textOf(letThrough.message as Message), "body");
    assert.deepEqual(order, ["gate rest-test", "gate rest-test", "read"]);
  });

  it("keeps an error thrown while reading the message as it was thrown", async () => {
    const { engine, views } = setup();
    const error = new ConnectError("bad body", Code.InvalidArgument);
    const result = await engine.invoke(
      "/fixture.v1.FixtureService/Unary",
      callOf("", { message: () => Promise.reject(error) }),
    );
    assert.equal(result.error, error);
    assert.equal(views.length, 0, "the chain never ran");
  });

  it("starts the client's deadline before the message is read, and covers reading it", async () => {
    const { engine } = setup();
    const result = await engine.invoke(
      "/fixture.v1.FixtureService/Unary",
      callOf("", { timeoutMs: 20, message: () => new Promise(() => {}) }),
    );
    assert.equal(result.error?.code, Code.DeadlineExceeded);
    const { engine: strict } = setup({ maxTimeoutMs: 1000 });
    const tooLong = await strict.invoke(
      "/fixture.v1.FixtureService/Unary",
      callOf("x", { timeoutMs: 5000 }),
    );
    assert.equal(tooLong.error?.code, Code.InvalidArgument);
    assert.equal(tooLong.error?.rawMessage, "timeout 5000ms must be <= 1000");
  });

  it("gives the handler the client's timeout, or else the method's default deadline", async () => {
    const { engine, seen } = setup({
      defaultDeadline: () => ({
        ms: 20,
        error: () => new ConnectError("default passed", Code.DeadlineExceeded),
      }),
      onCallStart: (values, call) => {
        if (call.defaultDeadline !== 0) values.set(deadlineKey, call.defaultDeadline);
      },
    });
    const timed = await engine.invoke(
      "/fixture.v1.FixtureService/Unary",
      callOf("x", { timeoutMs: 60_000 }),
    );
    assert.equal(timed.error, undefined);
    const left = seen[0]?.timeoutMs() ?? 0;
    assert.ok(left > 0 && left <= 60_000, String(left));
    const defaulted = await engine.invoke(
      "/fixture.v1.FixtureService/Unary",
      callOf("sleep:60000"),
    );
    assert.equal(defaulted.error?.rawMessage, "default passed");
    assert.ok((seen[1]?.values.get(deadlineKey) ?? 0) > 0, "told of its default deadline");
  });

  it("cancels the call when the client goes away, and when the server shuts down", async () => {
    const client = new AbortController();
    const { engine, seen } = setup();
    const pending = engine.invoke(
      "/fixture.v1.FixtureService/Unary",
      callOf("sleep:60000", { signal: client.signal }),
    );
    while (seen.length === 0) await new Promise((resolve) => setImmediate(resolve));
    client.abort(new ConnectError("the client went away", Code.Canceled));
    const gone = await pending;
    assert.equal(gone.error?.code, Code.Canceled);
    assert.equal(seen[0]?.signal.aborted, true);

    const shutdown = new AbortController();
    const { engine: stopping, seen: stoppingSeen } = setup({ shutdownSignal: shutdown.signal });
    // A call that ended before, and three in flight: each of those is stopped, once.
    assert.equal(
      (await stopping.invoke("/fixture.v1.FixtureService/Unary", callOf("x"))).error,
      undefined,
    );
    const inFlight = [1, 2, 3].map(() =>
      stopping.invoke("/fixture.v1.FixtureService/Unary", callOf("sleep:60000")),
    );
    while (stoppingSeen.length < 4) await new Promise((resolve) => setImmediate(resolve));
    shutdown.abort(new ConnectError("the server is stopping", Code.Unavailable));
    for (const call of inFlight) assert.equal((await call).error?.code, Code.Unavailable);
  });
});
