import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import type { Interceptor } from "@connectrpc/connect";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { startTestService } from "@keel/interceptors/testing";
import { context, TraceFlags, trace } from "@opentelemetry/api";
import { StackContextManager, TracerProvider } from "@opentelemetry/sdk-trace";
import { Registry } from "prom-client";
import { createMetricsHandler } from "./metrics-handler.ts";
import { createServerMetrics } from "./server-metrics.ts";
import { labels, openMetrics, prometheus, samples } from "./testing/metric-samples.ts";

describe("trace exemplars", () => {
  // The tracing interceptor runs `next` in its span's context; a synchronous context manager
  // is enough for that, and shows the span is taken as the call starts, streams included.
  context.setGlobalContextManager(new StackContextManager().enable());
  const tracer = new TracerProvider().getTracer("metrics-test");
  const unsampled = trace.wrapSpanContext({
    traceId: "0af7651916cd43dd8448eb211c80319c",
    spanId: "b7ad6b7169203331",
    traceFlags: TraceFlags.NONE,
  });
  const sampled = new Map<string, { traceId: string; spanId: string }>();
  const tracing: Interceptor = (next) => async (req) => {
    const span = req.method.name === "ListUsers" ? unsampled : tracer.startSpan(req.method.name);
    if (span !== unsampled) {
      const { traceId, spanId } = span.spanContext();
      sampled.set(req.method.name, { traceId, spanId });
    }
    try {
      return await context.with(trace.setSpan(context.active(), span), () => next(req));
    } finally {
      span.end();
    }
  };
  const registry = new Registry();
  const server = createServerMetrics({
    services: [UserService],
    registry,
    collectDefaultMetrics: false,
  });
  const metricsServer = http.createServer(createMetricsHandler({ registries: [registry] }));
  let service: Awaited<ReturnType<typeof startTestService>>;
  let url: string;

  before(async () => {
    service = await startTestService([tracing, server.interceptor]);
    const client = service.client("grpc");
    await client.getUser({ userId: 1n });
    await client.listUsers({});
    for await (const _ of client.streamUserActivities({ userId: 1n })) {
    }
    await new Promise<void>((resolve) => metricsServer.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(metricsServer.address() as AddressInfo).port}/metrics`;
  });
  after(async () => {
    await service.close();
    await new Promise((resolve) => metricsServer.close(resolve));
  });

  const exemplar = / # \{trace_id="(\w+)",span_id="(\w+)"\} (\S+) (\d+(?:\.\d+)?)$/;

  it("marks the handled counter and the histogram bucket of a sampled call with its trace", async () => {
    const res = await fetch(url, {
      headers: { accept: "application/openmetrics-text; version=1.0.0" },
    });
    assert.equal(res.headers.get("content-type"), openMetrics);
    const lines = (await res.text()).split("\n");
    for (const method of ["GetUser", "StreamUserActivities"]) {
      const span = sampled.get(method);
      const handled = lines.filter((l) =>
        l.startsWith(`grpc_server_handled_total{${labels(method, "OK")}} 1 #`),
      );
      assert.equal(handled.length, 1, method);
      const [, traceId, spanId, value] = exemplar.exec(handled[0] as string) ?? [];
      assert.deepEqual({ traceId, spanId, value }, { ...span, value: "1" });

      const buckets = lines.filter(
        (l) =>
          l.startsWith(`grpc_server_handling_seconds_bucket{${labels(method)},`) &&
          exemplar.test(l),
      );
      assert.equal(buckets.length, 1, method);
      const [, bucketTrace, bucketSpan, seconds] = exemplar.exec(buckets[0] as string) ?? [];
      assert.deepEqual({ traceId: bucketTrace, spanId: bucketSpan }, span);
      const le = /le="([^"]+)"/.exec(buckets[0] as string)?.[1];
      assert.ok(Number(seconds) > 0 && Number(seconds) <= Number(le), `${seconds} <= ${le}`);
    }
  });

  it("leaves unsampled calls without exemplars", async () => {
    const res = await fetch(url, { headers: { accept: "application/openmetrics-text" } });
    const listUsers = (await res.text())
      .split("\n")
      .filter((l) => l.includes(`{${labels("ListUsers")}`));
    assert.ok(listUsers.length > 0);
    assert.deepEqual(
      listUsers.filter((l) => l.includes(" # ")),
      [],
    );
  });

  it("prints no exemplars in the Prometheus text format", async () => {
    const res = await fetch(url, { headers: { accept: "text/plain; version=0.0.4" } });
    assert.equal(res.headers.get("content-type"), prometheus);
    const text = await res.text();
    assert.deepEqual(
      text.split("\n").filter((l) => l.includes(" # ")),
      [],
    );
    assert.equal(samples(text, "grpc_server_handled_total")[labels("GetUser", "OK")], 1);
  });
});
