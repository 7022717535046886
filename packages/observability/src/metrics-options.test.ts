import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { createClientMetrics } from "./client-metrics.ts";
import { createServerMetrics } from "./server-metrics.ts";
import { labels, perMethod, samples } from "./testing/metric-samples.ts";

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
