import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { getHeapStatistics } from "node:v8";
import { ConnectError, encodeBinaryHeader, type Interceptor } from "@connectrpc/connect";
import { whenCallEnds } from "./call-progress.ts";
import { type Response, settled } from "./chain.ts";
import { encodeOrcaLoadReport, type OrcaLoadReport } from "./orca-load-report.ts";

/** The trailer gRPC's ORCA sends a call's load report in (a binary header: base64 on the wire). */
export const loadReportTrailer = "endpoint-load-metrics-bin";

export interface LoadReporterOptions {
  /** How often the load is measured and the report rebuilt, in ms. Default 1000. */
  intervalMs?: number;
}

/** What the reporter measured over its last interval. */
export interface LoadReportSample extends OrcaLoadReport {
  /** Calls in flight when it was measured (also in `namedMetrics.in_flight`). */
  inFlight: number;
  /** The event loop's mean and 99th-percentile delay over the interval, in ms. */
  eventLoopDelayMs: { mean: number; p99: number };
}

export interface LoadReporter {
  /** Sends the latest report in every response's trailers (and every error's). */
  interceptor: Interceptor;
  /** The latest measurement. */
  sample(): LoadReportSample;
  /**
   * Measures now, over the time since the last measurement, and returns it; the timer does this
   * every `intervalMs`.
   */
  measure(): LoadReportSample;
  /** Stops measuring. */
  close(): void;
}

/**
 * Reports the server's load to its clients the way gRPC's ORCA does: every response carries an
 * `xds.data.orca.v3.OrcaLoadReport` in the `endpoint-load-metrics-bin` trailer, which clients'
 * weighted round robin weighs endpoints by (grpc-go's and keel's). Measured every `intervalMs`
 * on a timer, never per call; a call only counts itself and sets one precomputed trailer:
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
  let inFlight = 0;
  let answered = 0;
  let failed = 0;
  let lastAt = performance.now();
  let lastElu = performance.eventLoopUtilization();
  let lastCpu = process.cpuUsage();
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
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

  const measure = () => {
    const now = performance.now();
    const seconds = (now - lastAt) / 1000;
    const elu = performance.eventLoopUtilization();
    const cpu = process.cpuUsage(lastCpu);
    const heap = getHeapStatistics();
    const eventLoopDelayMs = {
      // With no sample yet (a loop too busy to tick), the histogram's values are NaN.
      mean: finite(delay.mean / 1e6),
      p99: finite(delay.percentile(99) / 1e6),
    };
    sample = {
      cpuUtilization: (cpu.user + cpu.system) / 1e6 / seconds,
      memUtilization: heap.used_heap_size / heap.heap_size_limit,
      rpsFractional: answered / seconds,
      eps: failed / seconds,
      applicationUtilization: performance.eventLoopUtilization(elu, lastElu).utilization,
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
    lastElu = elu;
    lastCpu = process.cpuUsage();
    answered = 0;
    failed = 0;
    delay.reset();
    return sample;
  };
  const timer = setInterval(measure, intervalMs);
  timer.unref();

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
    measure,
    close() {
      clearInterval(timer);
      delay.disable();
    },
  };
}

function finite(value: number): number {
  return Number.isFinite(value) ? value : 0;
}
