import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { getHeapStatistics } from "node:v8";
import { Code, ConnectError, encodeBinaryHeader } from "@connectrpc/connect";
import { createLoadReporter, type LoadReporter, loadReportTrailer } from "./load-report.ts";
import { createLoadSampler } from "./load-sampler.ts";
import { encodeOrcaLoadReport } from "./orca-load-report.ts";
import { handSampler } from "./testing/hand-sampler.ts";
import { messages, protocols, startTestService } from "./testing/test-service.ts";

// grpc-js's own ORCA recorder (what its servers put in the trailer), reached by its file: the
// package exports it only through a server call.
const require = createRequire(import.meta.url);
const { PerRequestMetricRecorder } = require("@grpc/grpc-js/build/src/orca.js") as {
  PerRequestMetricRecorder: new () => {
    recordCPUUtilizationMetric(v: number): void;
    recordMemoryUtilizationMetric(v: number): void;
    recordApplicationUtilizationMetric(v: number): void;
    recordQpsMetric(v: number): void;
    recordEpsMetric(v: number): void;
    recordNamedMetric(name: string, v: number): void;
    serialize(): Buffer;
  };
};

/** Waits until `done` holds, trying every 20 ms; fails after 10 s with `what`. */
async function until(done: () => boolean, what: string): Promise<void> {
  for (const end = Date.now() + 10_000; !done(); await sleep(20)) {
    if (Date.now() > end) assert.fail(`timed out waiting until ${what}`);
  }
}

describe("ORCA load report encoding", () => {
  it("writes the bytes grpc-js's recorder writes", () => {
    const report = {
      cpuUtilization: 0.75,
      memUtilization: 0.125,
      rpsFractional: 312.5,
      eps: 2.25,
      applicationUtilization: 0.5,
      namedMetrics: { in_flight: 3, event_loop_delay_p99_ms: 12.5 },
    };
    const recorder = new PerRequestMetricRecorder();
    recorder.recordCPUUtilizationMetric(report.cpuUtilization);
    recorder.recordMemoryUtilizationMetric(report.memUtilization);
    recorder.recordQpsMetric(report.rpsFractional);
    recorder.recordEpsMetric(report.eps);
    recorder.recordApplicationUtilizationMetric(report.applicationUtilization);
    for (const [name, value] of Object.entries(report.namedMetrics)) {
      recorder.recordNamedMetric(name, value);
    }
    assert.deepEqual(
      Buffer.from(encodeOrcaLoadReport(report)).toString("hex"),
      recorder.serialize().toString("hex"),
    );
  });
});

describe("createLoadReporter", () => {
  const reporters: LoadReporter[] = [];
  after(() => {
    for (const r of reporters) r.close();
  });
  const reporter = (intervalMs: number) => {
    const r = createLoadReporter({ intervalMs });
    reporters.push(r);
    return r;
  };

  it("sends the latest report in the trailers of every call kind and protocol, errors too", async () => {
    // A long interval: the report cannot change between a call and the check.
    const r = reporter(3_600_000);
    const service = await startTestService([r.interceptor], {
      getUser(req) {
        if (req.userId === 13n) throw new ConnectError("unlucky", Code.FailedPrecondition);
        return { user: { userId: req.userId } };
      },
    });
    const expected = () => encodeBinaryHeader(encodeOrcaLoadReport(r.sample()));
    try {
      for (const protocol of protocols) {
        const client = service.client(protocol);
        const trailers: Headers[] = [];
        const onTrailer = (t: Headers) => trailers.push(t);
        await client.getUser({ userId: 1n }, { onTrailer });
        for await (const _ of client.streamUserActivities({ userId: 1n }, { onTrailer }));
        if (protocol !== "grpc-web") {
          await client.batchUpdateUsers(messages([{ userId: 1n }]), { onTrailer });
          for await (const _ of client.syncUserStatus(messages([{ userId: 1n }]), { onTrailer }));
        }
        assert.equal(trailers.length, protocol === "grpc-web" ? 2 : 4, protocol);
        for (const t of trailers) assert.equal(t.get(loadReportTrailer), expected(), protocol);
        // GetUser of user 13 fails; the error's metadata carries the report.
        await assert.rejects(client.getUser({ userId: 13n }), (err: unknown) => {
          assert.ok(err instanceof ConnectError);
          assert.equal(err.code, Code.FailedPrecondition);
          assert.equal(err.metadata.get(loadReportTrailer), expected(), protocol);
          return true;
        });
      }
    } finally {
      await service.close();
    }
  });

  it("sums up a shared sampler's samples of each interval, and counts calls and errors", async () => {
    const { sampler, feed } = handSampler(100);
    const r = createLoadReporter({ intervalMs: 1000, sampler });
    reporters.push(r);
    const service = await startTestService([r.interceptor]);
    try {
      const client = service.client("grpc");
      // Ten calls, two of which fail, in one interval.
      await Promise.all([
        ...Array.from({ length: 8 }, () => client.getUser({ userId: 1n })),
        ...Array.from({ length: 2 }, () => client.getUser({ userId: 13n }).catch(() => {})),
      ]);
      const heap = getHeapStatistics().heap_size_limit / 4;
      // A quiet half second, then a busy one, 100 ms a sample.
      const quiet = { cpuUtilization: 0.2, eventLoopUtilization: 0.1, eventLoopDelayMs: 1 };
      const busy = { cpuUtilization: 0.6, eventLoopUtilization: 0.9, eventLoopDelayMs: 9 };
      const start = sampler.sampledAt;
      feed({ ...quiet, eventLoopDelayP99Ms: 3, heapUsedBytes: heap }, 5, start + 100);
      feed({ ...busy, eventLoopDelayP99Ms: 40 }, 1, start + 600);
      feed({ ...busy, eventLoopDelayP99Ms: 20 }, 3, start + 700);
      // Nine samples: 900 ms, not yet the second.
      assert.equal(r.sample().rpsFractional, 0);
      feed({}, 1, start + 1000);
      const sample = r.sample();
      const near = (actual: number, expected: number, what: string) =>
        assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual}, not ${expected}`);
      near(sample.cpuUtilization, (quiet.cpuUtilization + busy.cpuUtilization) / 2, "CPU");
      near(
        sample.applicationUtilization,
        (quiet.eventLoopUtilization + busy.eventLoopUtilization) / 2,
        "utilization",
      );
      near(sample.eventLoopDelayMs.mean, (1 + 9) / 2, "mean delay");
      assert.equal(sample.eventLoopDelayMs.p99, 40);
      near(sample.memUtilization, 0.25, "memory");
      // Ten calls and two errors in the one second the samples cover.
      near(sample.rpsFractional, 10, "rps");
      near(sample.eps, 2, "eps");
      assert.equal(sample.inFlight, 0);
      assert.deepEqual(sample.namedMetrics, {
        in_flight: 0,
        event_loop_delay_p99_ms: 40,
        event_loop_delay_mean_ms: sample.eventLoopDelayMs.mean,
      });
      // The next interval starts afresh: one quiet second, no calls.
      feed({ ...quiet, eventLoopDelayP99Ms: 3 }, 10, start + 1100);
      near(r.sample().cpuUtilization, quiet.cpuUtilization, "CPU of the next interval");
      assert.equal(r.sample().eventLoopDelayMs.p99, 3);
      assert.equal(r.sample().rpsFractional, 0);
      // Closed, it reads the sampler no more; the sampler, shared, goes on.
      r.close();
      feed(busy, 10, start + 2100);
      near(r.sample().cpuUtilization, quiet.cpuUtilization, "CPU after close");
    } finally {
      await service.close();
    }
  });

  it("reports on the sample nearest each interval, or on every sample when they are slower", () => {
    const reportsAt = (sampleMs: number, reportMs: number) => {
      const { sampler, feed } = handSampler(sampleMs);
      const r = createLoadReporter({ intervalMs: reportMs, sampler });
      const start = sampler.sampledAt;
      const at: number[] = [];
      let report = r.sample();
      for (let i = 1; i <= 7; i++) {
        feed({}, 1, start + i * sampleMs);
        if (r.sample() !== report) at.push(i * sampleMs);
        report = r.sample();
      }
      r.close();
      return at;
    };
    assert.deepEqual(reportsAt(300, 1000), [900, 1800]);
    assert.deepEqual(reportsAt(2000, 1000), [2000, 4000, 6000, 8000, 10000, 12000, 14000]);
  });

  it("sees a blocked event loop through a real sampler, its own or a shared one", async () => {
    const shared = createLoadSampler({ intervalMs: 50 });
    try {
      for (const r of [reporter(200), createLoadReporter({ intervalMs: 200, sampler: shared })]) {
        reporters.push(r);
        const end = performance.now() + 400;
        while (performance.now() < end);
        await until(() => r.sample().eventLoopDelayMs.p99 >= 100, "the block is reported");
        const sample = r.sample();
        assert.equal(sample.namedMetrics.event_loop_delay_p99_ms, sample.eventLoopDelayMs.p99);
        // CPU time depends on what else the machine runs: a busy loop on a shared core gets less.
        assert.ok(sample.cpuUtilization > 0, `CPU ${sample.cpuUtilization}`);
        assert.ok(sample.applicationUtilization > 0 && sample.applicationUtilization <= 1);
        assert.ok(sample.memUtilization > 0 && sample.memUtilization < 1);
      }
    } finally {
      shared.stop();
    }
  });

  it("counts a call that an interceptor after it throws at synchronously: answered, failed, reported", async () => {
    const { sampler, feed } = handSampler(100);
    const r = createLoadReporter({ intervalMs: 1000, sampler });
    reporters.push(r);
    const refuse = () => () => {
      throw new ConnectError("refused at once", Code.PermissionDenied);
    };
    const service = await startTestService([r.interceptor, refuse]);
    try {
      const err = await service
        .client("grpc")
        .getUser({ userId: 1n })
        .then(
          () => undefined,
          (e: unknown) => ConnectError.from(e),
        );
      assert.equal(err?.code, Code.PermissionDenied);
      assert.ok(err?.metadata.get(loadReportTrailer), "the error carries the load report");
      feed({}, 10, sampler.sampledAt + 1000);
      const sample = r.sample();
      assert.equal(sample.inFlight, 0);
      assert.ok(Math.abs(sample.rpsFractional - 1) < 1e-9, `rps ${sample.rpsFractional}`);
      assert.ok(Math.abs(sample.eps - 1) < 1e-9, `eps ${sample.eps}`);
    } finally {
      await service.close();
    }
  });

  it("counts a streaming call in flight until it ends", async () => {
    const r = reporter(100);
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const service = await startTestService([r.interceptor], {
      async *streamUserActivities() {
        yield { activityId: 1n };
        await held;
      },
    });
    try {
      const stream = service.client("grpc").streamUserActivities({ userId: 1n });
      const it = stream[Symbol.asyncIterator]();
      await it.next();
      await until(() => r.sample().inFlight === 1, "the stream is in flight");
      release();
      while (!(await it.next()).done);
      await until(() => r.sample().inFlight === 0, "the stream has ended");
    } finally {
      await service.close();
    }
  });
});
