import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, encodeBinaryHeader } from "@connectrpc/connect";
import { createLoadReporter, type LoadReporter, loadReportTrailer } from "./load-report.ts";
import { encodeOrcaLoadReport } from "./orca-load-report.ts";
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

  it("measures calls, errors and a busy event loop once per interval", async () => {
    // Measured by hand here, as the timer would.
    const r = reporter(3_600_000);
    const service = await startTestService([r.interceptor]);
    try {
      const client = service.client("grpc");
      // Ten calls, two of which fail, then the loop blocked for 400 ms, in one interval.
      await client.getUser({ userId: 1n });
      r.measure();
      await Promise.all([
        ...Array.from({ length: 8 }, () => client.getUser({ userId: 1n })),
        ...Array.from({ length: 2 }, () => client.getUser({ userId: 13n }).catch(() => {})),
      ]);
      const end = performance.now() + 400;
      while (performance.now() < end);
      // The delay histogram records the block when its own timer next fires.
      await sleep(50);
      const sample = r.measure();
      assert.ok(sample.rpsFractional > 0, `rps ${sample.rpsFractional}`);
      // 10 calls and 2 errors in one interval: eps is a fifth of rps.
      assert.ok(Math.abs(sample.eps * 5 - sample.rpsFractional) < 1e-9, JSON.stringify(sample));
      assert.ok(sample.applicationUtilization > 0.5, `ELU ${sample.applicationUtilization}`);
      assert.ok(sample.applicationUtilization <= 1);
      // CPU time depends on what else the machine runs: a busy loop on a shared core gets less.
      assert.ok(sample.cpuUtilization > 0, `CPU ${sample.cpuUtilization}`);
      assert.ok(sample.memUtilization > 0 && sample.memUtilization < 1);
      assert.equal(sample.inFlight, 0);
      assert.ok(sample.eventLoopDelayMs.p99 >= 100, `delay ${sample.eventLoopDelayMs.p99}`);
      assert.equal(sample.namedMetrics.event_loop_delay_p99_ms, sample.eventLoopDelayMs.p99);
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
