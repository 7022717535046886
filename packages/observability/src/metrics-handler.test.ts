import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { Counter, Gauge, Registry } from "prom-client";
import { createMetricsHandler } from "./metrics-handler.ts";
import { openMetrics, prometheus } from "./testing/metric-samples.ts";

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
