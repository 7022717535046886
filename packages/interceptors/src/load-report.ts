import { performance } from "node:perf_hooks";
import { getHeapStatistics } from "node:v8";
import { ConnectError, encodeBinaryHeader, type Interceptor } from "@connectrpc/connect";
import { whenCallEnds } from "./call-progress.ts";
import { type Response, settled } from "./chain.ts";
import { createLoadSampler, type LoadSample, type LoadSampler } from "./load-sampler.ts";
import { encodeOrcaLoadReport, type OrcaLoadReport } from "./orca-load-report.ts";

/** The trailer gRPC's ORCA sends a call's load report in (a binary header: base64 on the wire). */
export const loadReportTrailer = "endpoint-load-metrics-bin";

export interface LoadReporterOptions {
  /**
   * How often the report is rebuilt, in ms, from the samples taken since the last one: on the
   * sample nearest each `intervalMs` (every sample when the sampler's interval is longer).
   * Default 1000.
   */
  intervalMs?: number;
  /**
   * Where the process's load comes from: pass the process's one sampler (the one load shedding
   * and the memory watchdog read), so that the process runs one timer and one event-loop delay
   * monitor. Default: the reporter's own, sampling once per `intervalMs`, stopped by `close`.
   */
  sampler?: LoadSampler;
}

/** What the reporter measured over its last interval. */
export interface LoadReportSample extends OrcaLoadReport {
  /** Calls in flight when it was measured (also in `namedMetrics.in_flight`). */
  inFlight: number;
  /**
   * The event loop's delay over the interval, in ms: the mean of the sampler's means, each
   * weighted by the time it covers, and the highest of the sampler's 99th percentiles (with one
   * sample per report, the interval's own).
   */
  eventLoopDelayMs: { mean: number; p99: number };
}

export interface LoadReporter {
  /** Sends the latest report in every response's trailers (and every error's). */
  interceptor: Interceptor;
  /** The latest measurement. */
  sample(): LoadReportSample;
  /**
   * Rebuilds the report now, from the samples since the last report (with none, from the
   * sampler's latest), and returns it; done by itself every `intervalMs`.
   */
  measure(): LoadReportSample;
  /** Stops reading the sampler, and stops the reporter's own sampler. */
  close(): void;
}

/**
 * Reports the server's load to its clients the way gRPC's ORCA does: every response carries an
 * `xds.data.orca.v3.OrcaLoadReport` in the `endpoint-load-metrics-bin` trailer, which clients'
 * weighted round robin weighs endpoints by (grpc-go's and keel's). Rebuilt every `intervalMs`
 * from a load sampler's samples (its timer, never per call); a call only counts itself and sets
 * one precomputed trailer:
 * - `application_utilization`: the event loop's utilisation (the share of time it was busy,
 *   `performance.eventLoopUtilization`): a Node.js server's capacity is its event loop's;
 * - `cpu_utilization`: the process's CPU time over wall time (1 is one core);
 * - `mem_utilization`: the V8 heap used over its limit;
 * - `rps_fractional` and `eps`: calls answered, and answered with an error, per second;
 * - `named_metrics`: `in_flight` (calls in flight when measured), `event_loop_delay_p99_ms` and
 *   `event_loop_delay_mean_ms`.
 * A streaming call counts when it starts, and is in flight until its signal ends it.
 */
export function createLoadReporter(options: LoadReporterOptions = {}): LoadReporter {
  const intervalMs = options.intervalMs ?? 1000;
  // The two intervals differ: load shedding must see overload within 100 ms, while weights want
  // a steadier figure (grpc-go's weighted round robin updates them once a second). So a shared
  // sampler keeps its own interval, and a report sums up the samples of its `intervalMs`,
  // utilizations weighted by the time each sample covers; its own sampler samples once a report.
  const sampler = options.sampler ?? createLoadSampler({ intervalMs });
  // Fixed when the process starts.
  const heapLimit = getHeapStatistics().heap_size_limit;
  let inFlight = 0;
  let answered = 0;
  let failed = 0;
  let lastAt = sampler.sampledAt;
  let sampledAt = lastAt;
  // The samples since the last report: the time they cover, and each figure times its time.
  let coveredMs = 0;
  let cpuMs = 0;
  let busyMs = 0;
  let delayMs = 0;
  let delayP99 = 0;
  let sample: LoadReportSample = {
    cpuUtilization: 0,
    memUtilization: 0,
    rpsFractional: 0,
    eps: 0,
    applicationUtilization: 0,
    namedMetrics: { in_flight: 0 },
    inFlight: 0,
    eventLoopDelayMs: { mean: 0, p99: 0 },
  };
  let header = encodeBinaryHeader(encodeOrcaLoadReport(sample));

  const measure = (now = performance.now()) => {
    const latest = sampler.latest;
    const seconds = (now - lastAt) / 1000;
    const over = (weighted: number, single: number) =>
      coveredMs > 0 ? weighted / coveredMs : single;
    const eventLoopDelayMs = {
      mean: over(delayMs, latest.eventLoopDelayMs),
      p99: coveredMs > 0 ? delayP99 : latest.eventLoopDelayP99Ms,
    };
    sample = {
      cpuUtilization: over(cpuMs, latest.cpuUtilization),
      memUtilization: latest.heapUsedBytes / heapLimit,
      rpsFractional: seconds > 0 ? answered / seconds : 0,
      eps: seconds > 0 ? failed / seconds : 0,
      applicationUtilization: over(busyMs, latest.eventLoopUtilization),
      namedMetrics: {
        in_flight: inFlight,
        event_loop_delay_p99_ms: eventLoopDelayMs.p99,
        event_loop_delay_mean_ms: eventLoopDelayMs.mean,
      },
      inFlight,
      eventLoopDelayMs,
    };
    header = encodeBinaryHeader(encodeOrcaLoadReport(sample));
    lastAt = now;
    answered = 0;
    failed = 0;
    coveredMs = cpuMs = busyMs = delayMs = delayP99 = 0;
    return sample;
  };
  const added = (latest: LoadSample) => {
    const at = sampler.sampledAt;
    const ms = at - sampledAt;
    sampledAt = at;
    coveredMs += ms;
    cpuMs += latest.cpuUtilization * ms;
    busyMs += latest.eventLoopUtilization * ms;
    delayMs += latest.eventLoopDelayMs * ms;
    delayP99 = Math.max(delayP99, latest.eventLoopDelayP99Ms);
    // Timers run a little late or early: the report is due once less than half a sample remains.
    if (at - lastAt + sampler.intervalMs / 2 >= intervalMs) measure(at);
  };
  const stopReading = sampler.onSample(added);

  // Handlers made once: a call costs one promise here, no closure (a stream's end, one).
  const reported = (res: Response) => {
    res.trailer.set(loadReportTrailer, header);
    return res;
  };
  const refused = (err: unknown): never => {
    failed++;
    if (err instanceof ConnectError) err.metadata.set(loadReportTrailer, header);
    throw err;
  };
  const unaryDone = (res: Response) => {
    answered++;
    inFlight--;
    return reported(res);
  };
  const unaryFailed = (err: unknown): never => {
    answered++;
    inFlight--;
    return refused(err);
  };
  const streamEnded = () => {
    inFlight--;
  };
  const interceptor: Interceptor = (next) => (req) => {
    inFlight++;
    if (!req.stream) return settled(next, req).then(unaryDone, unaryFailed);
    answered++;
    whenCallEnds(req, streamEnded);
    return settled(next, req).then(reported, refused);
  };

  return {
    interceptor,
    sample: () => sample,
    measure: () => measure(),
    close() {
      stopReading();
      if (options.sampler === undefined) sampler.stop();
    },
  };
}
