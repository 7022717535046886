import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import {
  connectNodeAdapter,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace";
import {
  createClientTracingInterceptor,
  createTracingInterceptor,
  serveInUnsampledTraces,
  startTracing,
  type Tracing,
} from "./tracing.ts";

const exporter = new InMemorySpanExporter();
let tracing: Tracing;
let server: http2.Http2Server;
let url: string;
/** A server listening in an unsampled new trace's context (see `serveInUnsampledTraces`). */
let framed: http2.Http2Server;
let framedUrl: string;
const baggageSeen: (string | undefined)[] = [];
const activeSpans: (boolean | undefined)[] = [];
/** The user whose activity stream never ends by itself, and whether its handler cleaned up. */
const endless = 21n;
/** The user whose activity stream fails after its first message. */
const failing = 22n;
let endlessCleanedUp = false;

type Protocol = "grpc" | "grpc-web" | "connect";
function client(protocol: Protocol, interceptors: Interceptor[]) {
  const options = { baseUrl: url, interceptors };
  return createClient(
    UserService,
    protocol === "grpc"
      ? createGrpcTransport(options)
      : protocol === "grpc-web"
        ? createGrpcWebTransport({ ...options, httpVersion: "2" })
        : createConnectTransport({ ...options, httpVersion: "2" }),
  );
}

before(async () => {
  tracing = startTracing({
    serviceName: "tracing-test",
    samplingRatio: 1,
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  // GetUser of user 1 calls GetUser of user 2 on the same server, like OrderService asks UserService.
  const handler = connectNodeAdapter({
    interceptors: [createTracingInterceptor()],
    routes: (router) =>
      router.service(UserService, {
        async getUser(req) {
          baggageSeen.push(propagation.getBaggage(context.active())?.getEntry("tenant")?.value);
          // Whether the call has a span, and whether that one records.
          activeSpans.push(trace.getActiveSpan()?.isRecording());
          if (req.userId === 1n)
            await client("grpc", [createClientTracingInterceptor()]).getUser({ userId: 2n });
          if (req.userId === 13n) throw new ConnectError("database exploded", Code.Internal);
          if (req.userId === 14n) throw new ConnectError("no such user", Code.NotFound);
          return { user: { userId: req.userId } };
        },
        async *streamUserActivities(req, ctx) {
          yield { activityId: 1n };
          if (req.userId === failing) throw new ConnectError("feed broke", Code.Internal);
          if (req.userId !== endless) {
            yield { activityId: 2n };
            return;
          }
          // A live feed, until the client goes away.
          try {
            for (let id = 2n; !ctx.signal.aborted; id++) {
              yield { activityId: id };
              await new Promise((resolve) => setTimeout(resolve, 5));
            }
          } finally {
            endlessCleanedUp = true;
          }
        },
      }),
  });
  server = http2.createServer(handler);
  // The same, its listener started as keel's server starts its own.
  framed = http2.createServer(handler);
  await serveInUnsampledTraces(
    () => new Promise<void>((resolve) => framed.listen(0, "127.0.0.1", resolve)),
  );
  framedUrl = `http://127.0.0.1:${(framed.address() as AddressInfo).port}`;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await new Promise<void>((resolve) => framed.close(() => resolve()));
  await tracing.shutdown();
});

const named = (spans: ReadableSpan[], name: string, kind: SpanKind) =>
  spans.filter((s) => s.name === name && s.kind === kind);
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

describe("tracing", () => {
  for (const protocol of ["grpc", "grpc-web", "connect"] as const) {
    it(`chains client → server → client → server spans in one trace over ${protocol}`, async () => {
      exporter.reset();
      const root = trace.getTracer("test").startSpan("test-root");
      const bag = propagation.createBaggage({ tenant: { value: "acme" } });
      const ctx = propagation.setBaggage(trace.setSpan(context.active(), root), bag);
      await context.with(ctx, () =>
        client(protocol, [createClientTracingInterceptor()]).getUser({ userId: 1n }),
      );
      root.end();
      const spans = exporter.getFinishedSpans();
      const [outerClient] = named(spans, "user.v1.UserService/GetUser", SpanKind.CLIENT).filter(
        (s) => parentOf(s) === root.spanContext().spanId,
      );
      assert.ok(outerClient, "the outgoing call of the test is a child of its root span");
      const [outerServer] = named(spans, "user.v1.UserService/GetUser", SpanKind.SERVER).filter(
        (s) => parentOf(s) === outerClient.spanContext().spanId,
      );
      assert.ok(outerServer, "the server span continues the caller's trace");
      const [innerClient] = named(spans, "user.v1.UserService/GetUser", SpanKind.CLIENT).filter(
        (s) => parentOf(s) === outerServer.spanContext().spanId,
      );
      assert.ok(innerClient, "the handler's outgoing call is a child of the server span");
      const [innerServer] = named(spans, "user.v1.UserService/GetUser", SpanKind.SERVER).filter(
        (s) => parentOf(s) === innerClient.spanContext().spanId,
      );
      assert.ok(innerServer);
      assert.ok(spans.every((s) => s.spanContext().traceId === root.spanContext().traceId));
      assert.deepEqual(outerServer.attributes, {
        "rpc.system": protocol === "connect" ? "connect_rpc" : "grpc",
        "rpc.service": "user.v1.UserService",
        "rpc.method": "GetUser",
        "rpc.grpc.status_code": 0,
      });
      assert.deepEqual(baggageSeen.slice(-2), ["acme", "acme"], "baggage travels with the calls");
    });
  }

  it("names the service, its process and host in every span's resource", async () => {
    exporter.reset();
    await client("grpc", []).getUser({ userId: 3n });
    const [span] = named(
      exporter.getFinishedSpans(),
      "user.v1.UserService/GetUser",
      SpanKind.SERVER,
    );
    assert.ok(span, "the call's server span");
    await span.resource.waitForAsyncAttributes?.();
    const attributes = span.resource.attributes;
    assert.equal(attributes["service.name"], "tracing-test");
    assert.equal(attributes["process.pid"], process.pid);
    assert.equal(attributes["host.name"], hostname());
    assert.match(String(attributes["service.instance.id"]), /^[0-9a-f-]{36}$/);
    assert.equal(attributes["telemetry.sdk.language"], "nodejs");
  });

  it("records server errors, but not a client's mistake, on the server span", async () => {
    exporter.reset();
    const c = client("grpc", []);
    await assert.rejects(c.getUser({ userId: 13n }));
    await assert.rejects(c.getUser({ userId: 14n }));
    const [failed, notFound] = named(
      exporter.getFinishedSpans(),
      "user.v1.UserService/GetUser",
      SpanKind.SERVER,
    );
    assert.equal(failed?.status.code, SpanStatusCode.ERROR);
    assert.equal(failed?.attributes["rpc.grpc.status_code"], Code.Internal);
    assert.equal(failed?.events[0]?.name, "exception");
    assert.equal(notFound?.status.code, SpanStatusCode.UNSET);
    assert.equal(notFound?.attributes["rpc.grpc.status_code"], Code.NotFound);
  });

  it("ends a server-streaming span when the stream ends", async () => {
    exporter.reset();
    const received = [];
    for await (const a of client("grpc", [createClientTracingInterceptor()]).streamUserActivities(
      {},
    ))
      received.push(a);
    assert.equal(received.length, 2);
    const spans = exporter.getFinishedSpans();
    assert.equal(
      named(spans, "user.v1.UserService/StreamUserActivities", SpanKind.SERVER).length,
      1,
    );
    assert.equal(
      named(spans, "user.v1.UserService/StreamUserActivities", SpanKind.CLIENT).length,
      1,
    );
  });

  it("records a server stream that fails after its first message on its span", async () => {
    exporter.reset();
    const received: unknown[] = [];
    await assert.rejects(async () => {
      for await (const a of client("grpc", []).streamUserActivities({ userId: failing }))
        received.push(a);
    }, /feed broke/);
    assert.equal(received.length, 1);
    const [span] = named(
      exporter.getFinishedSpans(),
      "user.v1.UserService/StreamUserActivities",
      SpanKind.SERVER,
    );
    assert.equal(span?.status.code, SpanStatusCode.ERROR);
    assert.equal(span?.status.message, "feed broke");
    assert.equal(span?.attributes["rpc.grpc.status_code"], Code.Internal);
  });

  it("ends the span of a server stream the client gives up, and lets its handler clean up", async () => {
    exporter.reset();
    const cancel = new AbortController();
    await assert.rejects(async () => {
      const stream = client("grpc", []).streamUserActivities(
        { userId: endless },
        { signal: cancel.signal },
      );
      for await (const _ of stream) cancel.abort();
    }, /aborted/);
    const deadline = Date.now() + 2000;
    const serverSpans = () =>
      named(
        exporter.getFinishedSpans(),
        "user.v1.UserService/StreamUserActivities",
        SpanKind.SERVER,
      );
    while ((serverSpans().length === 0 || !endlessCleanedUp) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(serverSpans().length, 1, "the server span ends when the client goes away");
    assert.ok(endlessCleanedUp, "the handler's generator ran its cleanup");
  });

  it("propagates trace context with nothing to export", async () => {
    // A second SDK in this process would fight the first over the globals: check in a child.
    const { execFileSync } = await import("node:child_process");
    const script = `
      import { startTracing } from ${JSON.stringify(new URL("./tracing.ts", import.meta.url).href)};
      import { context, propagation, trace } from "@opentelemetry/api";
      const tracing = startTracing({ serviceName: "t", samplingRatio: 1 });
      const span = trace.getTracer("t").startSpan("s");
      const carrier = {};
      propagation.inject(trace.setSpan(context.active(), span), carrier);
      console.log(carrier.traceparent ?? "none");
      await tracing.shutdown();`;
    const out = execFileSync(
      process.execPath,
      ["--conditions=source", "--input-type=module", "-e", script],
      {
        cwd: new URL("..", import.meta.url),
      },
    ).toString();
    assert.match(out, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01/);
  });

  it("samples new traces by the ratio, which can change while running", async () => {
    exporter.reset();
    tracing.setSamplingRatio(0);
    await client("grpc", []).getUser({ userId: 5n });
    assert.equal(exporter.getFinishedSpans().length, 0);
    tracing.setSamplingRatio(1);
    await client("grpc", []).getUser({ userId: 5n });
    assert.equal(exporter.getFinishedSpans().length, 1);
  });

  for (const listening of ["plainly", "in an unsampled trace's context"] as const) {
    it(`makes no span for a new trace it does not sample, nor samples what that call calls (listening ${listening})`, async () => {
      const plainUrl = url;
      if (listening !== "plainly") url = framedUrl;
      try {
        exporter.reset();
        activeSpans.length = 0;
        tracing.setSamplingRatio(0);
        // User 1's GetUser calls GetUser of user 2 with the client tracing interceptor.
        await client("grpc", []).getUser({ userId: 1n });
        assert.deepEqual(
          activeSpans,
          [undefined, false],
          "no span for the new trace; an unsampled child",
        );
        assert.equal(exporter.getFinishedSpans().length, 0);
        // A caller's sampled trace is followed whatever the ratio: the call has its span.
        activeSpans.length = 0;
        tracing.setSamplingRatio(1);
        const root = trace.getTracer("test").startSpan("test-root");
        tracing.setSamplingRatio(0);
        await context.with(trace.setSpan(context.active(), root), () =>
          client("grpc", [createClientTracingInterceptor()]).getUser({ userId: 5n }),
        );
        root.end();
        assert.deepEqual(activeSpans, [true]);
        // A new trace it samples has its spans, its child's too.
        activeSpans.length = 0;
        tracing.setSamplingRatio(1);
        await client("grpc", []).getUser({ userId: 1n });
        assert.deepEqual(activeSpans, [true, true]);
      } finally {
        url = plainUrl;
        tracing.setSamplingRatio(1);
      }
    });
  }
});
