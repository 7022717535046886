import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { type Client, Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { context, TraceFlags, trace } from "@opentelemetry/api";
import { StackContextManager, TracerProvider } from "@opentelemetry/sdk-trace";
import { Counter, Gauge, Registry } from "prom-client";
import { createClientMetrics, createServerMetrics } from "./metrics.ts";
import { createMetricsHandler } from "./metrics-handler.ts";
import { messages, protocols, startTestService } from "./testing/test-service.ts";

const openMetrics = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const prometheus = "text/plain; version=0.0.4; charset=utf-8";

type GrpcType = "unary" | "server_stream" | "client_stream" | "bidi_stream";

/** UserService's methods and their `grpc_type`. */
const methods: [string, GrpcType][] = [
  ["GetUser", "unary"],
  ["CreateUser", "unary"],
  ["ListUsers", "unary"],
  ["StreamUserActivities", "server_stream"],
  ["BatchUpdateUsers", "client_stream"],
  ["SyncUserStatus", "bidi_stream"],
  ["Login", "unary"],
  ["RefreshToken", "unary"],
];
const typeOf = (method: string) => methods.find(([m]) => m === method)?.[1] ?? "unary";

/** A method's labels as printed: sorted by name, as Go's client prints them. */
function labels(method: string, code?: string): string {
  const common = `grpc_method="${method}",grpc_service="user.v1.UserService",grpc_type="${typeOf(method)}"`;
  return code === undefined ? common : `grpc_code="${code}",${common}`;
}

/** One value per method of UserService: `values[method]`, else 0. */
function perMethod(values: Record<string, number>, only?: string[]): Record<string, number> {
  return Object.fromEntries(
    methods
      .filter(([m]) => only === undefined || only.includes(m))
      .map(([m]) => [labels(m), values[m] ?? 0]),
  );
}

/** The samples named exactly `name` in exposition text: printed labels → value. */
function samples(text: string, name: string): Record<string, number> {
  const found: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.indexOf("} ");
    found[line.slice(name.length + 1, close)] = Number(line.slice(close + 2).split(" ")[0]);
  }
  return found;
}

/** The samples of `name` that are not zero. */
function nonZero(text: string, name: string): Record<string, number> {
  return Object.fromEntries(Object.entries(samples(text, name)).filter(([, v]) => v !== 0));
}

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** GetUser as the test service has it, plus user 404 answering NotFound. */
const getUserWithNotFound = {
  getUser(req: { userId: bigint }) {
    if (req.userId === 404n) throw new ConnectError("user 404 not found", Code.NotFound);
    if (req.userId === 13n) throw new Error("unlucky");
    return { user: { userId: req.userId, username: `user${req.userId}` } };
  },
};

/**
 * 3 GetUser OK, 1 NotFound, 1 plain error (Internal), a server stream of 3, a client stream of 2
 * and a bidi exchange of 2.
 */
async function knownCalls(client: Client<typeof UserService>): Promise<void> {
  for (const userId of [1n, 2n, 3n]) await client.getUser({ userId });
  await assert.rejects(client.getUser({ userId: 404n }), { code: Code.NotFound });
  await assert.rejects(client.getUser({ userId: 13n }), { code: Code.Internal });
  let activities = 0;
  for await (const _ of client.streamUserActivities({ userId: 7n })) activities++;
  assert.equal(activities, 3);
  const batch = await client.batchUpdateUsers(messages([{ userId: 1n }, { userId: 2n }]));
  assert.equal(batch.updatedCount, 2);
  const synced: bigint[] = [];
  for await (const update of client.syncUserStatus(messages([{ userId: 1n }, { userId: 2n }]))) {
    synced.push(update.userId);
  }
  assert.deepEqual(synced, [1n, 2n]);
}

const called = ["GetUser", "StreamUserActivities", "BatchUpdateUsers", "SyncUserStatus"];

for (const protocol of protocols) {
  describe(`metrics of known calls over ${protocol}`, () => {
    const registry = new Registry();
    const server = createServerMetrics({
      services: [UserService],
      registry,
      collectDefaultMetrics: false,
    });
    const client = createClientMetrics({ registry });
    let service: Awaited<ReturnType<typeof startTestService>>;
    let text: string;

    before(async () => {
      service = await startTestService([server.interceptor], getUserWithNotFound);
      await knownCalls(service.client(protocol, [client.interceptor]));
      text = await registry.metrics();
    });
    after(() => service.close());

    it("counts started calls for every method of the service, at zero for those never called", () => {
      assert.deepEqual(
        samples(text, "grpc_server_started_total"),
        perMethod({ GetUser: 5, StreamUserActivities: 1, BatchUpdateUsers: 1, SyncUserStatus: 1 }),
      );
    });

    it("counts handled calls per code, every code of every method present", () => {
      assert.deepEqual(nonZero(text, "grpc_server_handled_total"), {
        [labels("GetUser", "OK")]: 3,
        [labels("GetUser", "NotFound")]: 1,
        [labels("GetUser", "Internal")]: 1,
        [labels("StreamUserActivities", "OK")]: 1,
        [labels("BatchUpdateUsers", "OK")]: 1,
        [labels("SyncUserStatus", "OK")]: 1,
      });
      const handled = samples(text, "grpc_server_handled_total");
      assert.equal(Object.keys(handled).length, methods.length * 17);
      assert.equal(handled[labels("ListUsers", "Unauthenticated")], 0);
      assert.equal(handled[labels("ListUsers", "OK")], 0);
    });

    it("counts messages received and sent, each stream message as it passes", () => {
      assert.deepEqual(
        samples(text, "grpc_server_msg_received_total"),
        perMethod({ GetUser: 5, StreamUserActivities: 1, BatchUpdateUsers: 2, SyncUserStatus: 2 }),
      );
      assert.deepEqual(
        samples(text, "grpc_server_msg_sent_total"),
        perMethod({ GetUser: 3, StreamUserActivities: 3, BatchUpdateUsers: 1, SyncUserStatus: 2 }),
      );
    });

    it("observes every handled call in the histogram, with the default buckets", () => {
      const counts = {
        GetUser: 5,
        StreamUserActivities: 1,
        BatchUpdateUsers: 1,
        SyncUserStatus: 1,
      };
      assert.deepEqual(samples(text, "grpc_server_handling_seconds_count"), perMethod(counts));
      const buckets = samples(text, "grpc_server_handling_seconds_bucket");
      const les = Object.keys(buckets)
        .filter((k) => k.startsWith(labels("GetUser")))
        .map((k) => k.slice(labels("GetUser").length));
      assert.deepEqual(
        les,
        ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"].map(
          (le) => `,le="${le}"`,
        ),
      );
      assert.equal(buckets[`${labels("GetUser")},le="+Inf"`], 5);
      assert.equal(buckets[`${labels("ListUsers")},le="+Inf"`], 0);
      const sums = samples(text, "grpc_server_handling_seconds_sum");
      assert.ok((sums[labels("GetUser")] as number) > 0);
      assert.equal(sums[labels("ListUsers")], 0);
    });

    it("has no call in flight once all are done", () => {
      assert.deepEqual(samples(text, "grpc_server_requests_in_flight"), perMethod({}));
      assert.equal(server.inFlight(), 0);
    });

    it("records the client side in the same registry, for the methods called", () => {
      const counts = {
        GetUser: 5,
        StreamUserActivities: 1,
        BatchUpdateUsers: 1,
        SyncUserStatus: 1,
      };
      assert.deepEqual(samples(text, "grpc_client_started_total"), perMethod(counts, called));
      assert.deepEqual(
        samples(text, "grpc_client_msg_sent_total"),
        perMethod(
          { GetUser: 5, StreamUserActivities: 1, BatchUpdateUsers: 2, SyncUserStatus: 2 },
          called,
        ),
      );
      assert.deepEqual(
        samples(text, "grpc_client_msg_received_total"),
        perMethod(
          { GetUser: 3, StreamUserActivities: 3, BatchUpdateUsers: 1, SyncUserStatus: 2 },
          called,
        ),
      );
      assert.deepEqual(nonZero(text, "grpc_client_handled_total"), {
        [labels("GetUser", "OK")]: 3,
        [labels("GetUser", "NotFound")]: 1,
        [labels("GetUser", "Internal")]: 1,
        [labels("StreamUserActivities", "OK")]: 1,
        [labels("BatchUpdateUsers", "OK")]: 1,
        [labels("SyncUserStatus", "OK")]: 1,
      });
      assert.equal(
        Object.keys(samples(text, "grpc_client_handled_total")).length,
        called.length * 17,
      );
      assert.deepEqual(
        samples(text, "grpc_client_handling_seconds_count"),
        perMethod(counts, called),
      );
    });

    it("prints go-grpc-middleware's names, types and help", () => {
      const headers = text.split("\n").filter((line) => line.startsWith("# "));
      assert.deepEqual(headers, [
        "# HELP grpc_server_started_total Total number of RPCs started on the server.",
        "# TYPE grpc_server_started_total counter",
        "# HELP grpc_server_handled_total Total number of RPCs completed on the server, regardless of success or failure.",
        "# TYPE grpc_server_handled_total counter",
        "# HELP grpc_server_msg_received_total Total number of RPC stream messages received on the server.",
        "# TYPE grpc_server_msg_received_total counter",
        "# HELP grpc_server_msg_sent_total Total number of gRPC stream messages sent by the server.",
        "# TYPE grpc_server_msg_sent_total counter",
        "# HELP grpc_server_handling_seconds Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
        "# TYPE grpc_server_handling_seconds histogram",
        "# HELP grpc_server_requests_in_flight Number of RPCs being handled by the server.",
        "# TYPE grpc_server_requests_in_flight gauge",
        "# HELP grpc_client_started_total Total number of RPCs started on the client.",
        "# TYPE grpc_client_started_total counter",
        "# HELP grpc_client_handled_total Total number of RPCs completed by the client, regardless of success or failure.",
        "# TYPE grpc_client_handled_total counter",
        "# HELP grpc_client_msg_received_total Total number of RPC stream messages received by the client.",
        "# TYPE grpc_client_msg_received_total counter",
        "# HELP grpc_client_msg_sent_total Total number of gRPC stream messages sent by the client.",
        "# TYPE grpc_client_msg_sent_total counter",
        "# HELP grpc_client_handling_seconds Histogram of response latency (seconds) of the gRPC until it is finished by the application.",
        "# TYPE grpc_client_handling_seconds histogram",
      ]);
    });
  });

  describe(`calls in progress over ${protocol}`, () => {
    it("shows a slow call in flight, and then no longer", async () => {
      const registry = new Registry();
      const server = createServerMetrics({
        services: [UserService],
        registry,
        collectDefaultMetrics: false,
      });
      let entered = () => {};
      const inHandler = new Promise<void>((resolve) => {
        entered = resolve;
      });
      let release = () => {};
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      const service = await startTestService([server.interceptor], {
        async getUser(req) {
          entered();
          await released;
          return { user: { userId: req.userId } };
        },
      });
      try {
        const call = service.client(protocol).getUser({ userId: 1n });
        await inHandler;
        assert.deepEqual(
          samples(await registry.metrics(), "grpc_server_requests_in_flight"),
          perMethod({ GetUser: 1 }),
        );
        assert.equal(server.inFlight(), 1);
        release();
        await call;
        const text = await registry.metrics();
        assert.deepEqual(samples(text, "grpc_server_requests_in_flight"), perMethod({}));
        assert.equal(server.inFlight(), 0);
        assert.deepEqual(nonZero(text, "grpc_server_handled_total"), {
          [labels("GetUser", "OK")]: 1,
        });
      } finally {
        await service.close();
      }
    });

    it("counts a stream the client cancels as Canceled, on both sides", async () => {
      const registry = new Registry();
      const server = createServerMetrics({
        services: [UserService],
        registry,
        collectDefaultMetrics: false,
      });
      const client = createClientMetrics({ registry });
      const service = await startTestService([server.interceptor], {
        async *streamUserActivities(req, ctx) {
          yield { activityId: 1n, userId: req.userId, action: "user.login" };
          // A live stream: nothing more until the client goes away.
          await new Promise((resolve) =>
            ctx.signal.addEventListener("abort", resolve, { once: true }),
          );
        },
      });
      try {
        const abort = new AbortController();
        let received = 0;
        const stream = service
          .client(protocol, [client.interceptor])
          .streamUserActivities({ userId: 1n }, { signal: abort.signal });
        await assert.rejects(
          async () => {
            for await (const _ of stream) {
              received++;
              abort.abort();
            }
          },
          { code: Code.Canceled },
        );
        assert.equal(received, 1);
        await until(() => server.inFlight() === 0, "the server to see the cancel");
        const text = await registry.metrics();
        assert.deepEqual(nonZero(text, "grpc_server_handled_total"), {
          [labels("StreamUserActivities", "Canceled")]: 1,
        });
        assert.deepEqual(nonZero(text, "grpc_server_msg_sent_total"), {
          [labels("StreamUserActivities")]: 1,
        });
        assert.deepEqual(nonZero(text, "grpc_server_handling_seconds_count"), {
          [labels("StreamUserActivities")]: 1,
        });
        assert.deepEqual(nonZero(text, "grpc_client_handled_total"), {
          [labels("StreamUserActivities", "Canceled")]: 1,
        });
        assert.deepEqual(nonZero(text, "grpc_client_msg_received_total"), {
          [labels("StreamUserActivities")]: 1,
        });
      } finally {
        await service.close();
      }
    });
  });
}

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

describe("createServerMetrics options", () => {
  it("registers prom-client's process and Node.js metrics by default, once per registry", async () => {
    const server = createServerMetrics({ services: [] });
    createClientMetrics({ registry: server.registry, collectDefaultMetrics: true });
    const text = await server.registry.metrics();
    assert.match(text, /^# TYPE process_cpu_user_seconds_total counter$/m);
    assert.match(text, /^# TYPE nodejs_eventloop_lag_seconds gauge$/m);
  });

  it("registers no default metrics when asked not to", async () => {
    const server = createServerMetrics({ services: [], collectDefaultMetrics: false });
    assert.doesNotMatch(await server.registry.metrics(), /process_cpu/);
  });

  it("uses the given buckets", async () => {
    const server = createServerMetrics({
      services: [UserService],
      buckets: [0.1, 1],
      collectDefaultMetrics: false,
    });
    const buckets = samples(await server.registry.metrics(), "grpc_server_handling_seconds_bucket");
    assert.deepEqual(
      Object.keys(buckets).filter((k) => k.startsWith(labels("Login"))),
      [`${labels("Login")},le="0.1"`, `${labels("Login")},le="1"`, `${labels("Login")},le="+Inf"`],
    );
  });

  it("rejects buckets that do not increase", () => {
    assert.throws(() => createServerMetrics({ services: [], buckets: [1, 0.5] }), {
      message: "buckets must be finite and increasing, got [1, 0.5]",
    });
  });

  it("pre-initialises client methods when given services", async () => {
    const client = createClientMetrics({ services: [UserService] });
    assert.deepEqual(
      samples(await client.registry.metrics(), "grpc_client_started_total"),
      perMethod({}),
    );
  });
});

describe("createMetricsHandler", () => {
  const registry = new Registry();
  registry.setDefaultLabels({ app: "keel" });
  const jobs = new Counter({
    name: "jobs_total",
    help: "Jobs done.",
    labelNames: ["queue"],
    registers: [registry],
  });
  jobs.inc({ queue: "a" }, 2);
  new Gauge({ name: "workers", help: "Workers running.", registers: [registry] }).set(3);
  const other = new Registry();
  new Gauge({ name: "workers", help: "Shadowed.", registers: [other] }).set(9);
  new Gauge({ name: "queue_depth", help: "Queued jobs.", registers: [other] }).set(4);

  const handler = createMetricsHandler({ registries: [registry, other] });
  const server = http.createServer(handler);
  let base: string;
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise((resolve) => server.close(resolve)));

  const scrape = async (accept?: string) => {
    const res = await fetch(`${base}/metrics`, accept === undefined ? {} : { headers: { accept } });
    return {
      status: res.status,
      contentType: res.headers.get("content-type"),
      body: await res.text(),
    };
  };

  const prometheusBody = [
    "# HELP jobs_total Jobs done.",
    "# TYPE jobs_total counter",
    'jobs_total{queue="a",app="keel"} 2',
    "",
    "# HELP workers Workers running.",
    "# TYPE workers gauge",
    'workers{app="keel"} 3',
    "",
    "# HELP queue_depth Queued jobs.",
    "# TYPE queue_depth gauge",
    "queue_depth 4",
    "",
  ].join("\n");
  const openMetricsBody = [
    "# HELP jobs Jobs done.",
    "# TYPE jobs counter",
    'jobs_total{queue="a",app="keel"} 2',
    "# HELP workers Workers running.",
    "# TYPE workers gauge",
    'workers{app="keel"} 3',
    "# HELP queue_depth Queued jobs.",
    "# TYPE queue_depth gauge",
    "queue_depth 4",
    "# EOF",
    "",
  ].join("\n");

  it("serves both formats from the same registries, in turn, without renaming their metrics", async () => {
    assert.deepEqual(await scrape("application/openmetrics-text"), {
      status: 200,
      contentType: openMetrics,
      body: openMetricsBody,
    });
    assert.deepEqual(await scrape("text/plain"), {
      status: 200,
      contentType: prometheus,
      body: prometheusBody,
    });
    assert.deepEqual(await scrape("application/openmetrics-text"), {
      status: 200,
      contentType: openMetrics,
      body: openMetricsBody,
    });
    assert.equal(jobs.get !== undefined && (await jobs.get()).name, "jobs_total");
  });

  it("negotiates the format from Accept", async () => {
    const cases: [string | undefined, string][] = [
      [undefined, prometheus],
      ["text/plain", prometheus],
      ["*/*", prometheus],
      ["application/json", prometheus],
      ["application/openmetrics-text; version=1.0.0", openMetrics],
      [
        // Prometheus 2's default.
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        openMetrics,
      ],
      ["application/openmetrics-text;q=0,text/plain", prometheus],
      ["text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5", prometheus],
      ["application/openmetrics-text;version=2.0.0", prometheus],
    ];
    for (const [accept, contentType] of cases) {
      assert.equal((await scrape(accept)).contentType, contentType, accept);
    }
  });

  it("answers HEAD with the headers only", async () => {
    const res = await fetch(`${base}/metrics`, { method: "HEAD" });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-length"), String(Buffer.byteLength(prometheusBody)));
    assert.equal(await res.text(), "");
  });

  it("answers other paths with 404 and other methods with 405", async () => {
    assert.equal((await fetch(`${base}/other`)).status, 404);
    const post = await fetch(`${base}/metrics`, { method: "POST" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
  });
});
