import { readFile, rm } from "node:fs/promises";
import { finish, launch } from "./launch.ts";
import { cpuMicros } from "./proc-stats.ts";
import { type LatencySummary, summarizeLatencies } from "./stats.ts";

/** One h2load run: unary calls posting one prepared body (gRPC unless told otherwise). */
export interface H2loadOptions {
  /** `http://127.0.0.1:PORT/package.Service/Method`, or a REST route's URL for a GET. */
  url: string;
  /** The request body: one gRPC length-prefixed message (see `grpcFrame`); none: a GET. */
  bodyFile?: string;
  /**
   * The request's content type. Default: `application/grpc` (with `te: trailers`) for a body,
   * none for a GET; null: none.
   */
  contentType?: string | null;
  /** HTTP/1.1 instead of HTTP/2 (h2load --h1): one request at a time per connection. */
  http1?: boolean;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** Connections (-c). */
  connections: number;
  /** Requests in flight on each connection (-m). */
  streamsPerConnection: number;
  /** Timing-based run for this long (-D); or else `requests`. */
  durationSeconds?: number;
  /**
   * With `durationSeconds`: a period before it whose calls h2load makes but leaves out of its
   * figures (--warm-up-time). h2load still logs the calls that started in it and ended after it
   * (on a busy server, the opening calls of new connections, which can wait seconds): the
   * latencies here leave those out too.
   */
  warmUpSeconds?: number;
  /** Called when the measured period begins (after the warm-up, if any). */
  onMeasuring?: (() => void) | undefined;
  /** Requests in all (-n), when not timing-based. */
  requests?: number;
  /** Requests per second of each connection (--rps). */
  rpsPerConnection?: number;
  /** Open this many connections every `periodMs` (-r, --rate-period) instead of all at once. */
  connectionRate?: { count: number; periodMs: number };
  /** The CPU h2load runs on; undefined: any. */
  cpu?: number | undefined;
  /** Where per-request latencies go (--log-file); replaced. */
  logFile: string;
  /**
   * h2load's own limit on each connection's life (-T); it is killed 3 s later if still running
   * (h2load can wait forever for calls a server never answers), and the results are then read
   * from its per-request log: every call without a response counts as an error.
   */
  timeoutSeconds: number;
}

/** What h2load reported, with latency percentiles computed from its per-request log. */
export interface H2loadResult {
  seconds: number;
  requestsPerSecond: number;
  total: number;
  succeeded: number;
  /** Requests that failed (errored and timed out ones included) or never finished, plus responses whose HTTP status was not 2xx. */
  errors: number;
  /** Latency of the requests that got a response, in milliseconds. */
  latencyMs: LatencySummary;
  /** Set when h2load had to be killed. */
  stopped?: string;
  /** The share of one CPU h2load used while it ran (sampled; at most 1 per thread). */
  clientCpuShare?: number;
}

/** Runs h2load once and parses what it printed and logged. */
export async function runH2load(options: H2loadOptions): Promise<H2loadResult> {
  await rm(options.logFile, { force: true });
  const args = [
    "h2load",
    `--clients=${options.connections}`,
    `--max-concurrent-streams=${options.streamsPerConnection}`,
    "--threads=1",
    ...(options.bodyFile === undefined ? [] : [`--data=${options.bodyFile}`]),
    ...(options.http1 === true ? ["--h1"] : []),
    ...contentTypeHeaders(
      options.contentType !== undefined
        ? options.contentType
        : options.bodyFile === undefined
          ? null
          : "application/grpc",
    ),
    ...Object.entries(options.headers ?? {}).map(([name, value]) => `--header=${name}: ${value}`),
    `--log-file=${options.logFile}`,
    `--connection-active-timeout=${options.timeoutSeconds}`,
    ...(options.durationSeconds === undefined
      ? [`--requests=${options.requests ?? 1}`]
      : [`--duration=${options.durationSeconds}`]),
    ...(options.durationSeconds === undefined || options.warmUpSeconds === undefined
      ? []
      : [`--warm-up-time=${options.warmUpSeconds}`]),
    ...(options.rpsPerConnection === undefined ? [] : [`--rps=${options.rpsPerConnection}`]),
    ...(options.connectionRate === undefined
      ? []
      : [
          `--rate=${options.connectionRate.count}`,
          `--rate-period=${options.connectionRate.periodMs}ms`,
        ]),
    options.url,
  ];
  const started = performance.now();
  const warmUpMs = options.durationSeconds === undefined ? 0 : (options.warmUpSeconds ?? 0) * 1000;
  // h2load logs when each call started, in microseconds since the epoch; none starts before now.
  const measuredFromMicros = (Date.now() + warmUpMs) * 1000;
  const measuring =
    options.onMeasuring === undefined ? undefined : setTimeout(options.onMeasuring, warmUpMs);
  // The wrapper execs h2load: the child's pid is h2load's, whose CPU time is sampled as it runs.
  const child = launch(args, { cpu: options.cpu });
  let cpu = { micros: 0, at: started };
  const sampler = setInterval(() => {
    const micros = child.pid === undefined ? 0 : cpuMicros([child.pid]);
    if (micros > 0) cpu = { micros, at: performance.now() };
  }, 250);
  const done = await finish(child, (options.timeoutSeconds + 3) * 1000 + warmUpMs).finally(() => {
    clearTimeout(measuring);
    clearInterval(sampler);
  });
  const clientCpuShare = cpu.at > started ? cpu.micros / 1000 / (cpu.at - started) : undefined;
  const log = await readFile(options.logFile, "utf8").catch(() => "");
  const latencies = parseH2loadLog(log, measuredFromMicros);
  if (done.timedOut && options.requests !== undefined) {
    const seconds = (performance.now() - started) / 1000;
    const unanswered = options.requests - latencies.length;
    return {
      seconds,
      requestsPerSecond: latencies.length / seconds,
      total: options.requests,
      succeeded: latencies.length,
      errors: unanswered,
      latencyMs: summarizeLatencies(latencies),
      stopped:
        `h2load was still waiting after ${Math.round(seconds)} s and was stopped: ` +
        `${unanswered} of ${options.requests} calls got no 2xx response`,
    };
  }
  if (done.code !== 0) {
    throw new Error(
      `h2load ended with ${done.code ?? done.signal}: ${done.stderr.trim() || done.stdout.trim()}`,
    );
  }
  return {
    ...parseH2loadOutput(done.stdout),
    latencyMs: summarizeLatencies(latencies),
    ...(clientCpuShare === undefined ? {} : { clientCpuShare }),
  };
}

function contentTypeHeaders(contentType: string | null | undefined): string[] {
  if (contentType === null) return [];
  const type = contentType ?? "application/grpc";
  return [
    `--header=content-type: ${type}`,
    ...(/^application\/grpc(\+|;|$)/.test(type) ? ["--header=te: trailers"] : []),
  ];
}

/** The totals of h2load's report. */
export function parseH2loadOutput(text: string): Omit<H2loadResult, "latencyMs"> {
  const finished = /finished in ([\d.]+)(ms|s), ([\d.]+) req\/s/.exec(text);
  const requests =
    /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, \d+ errored, \d+ timeout/.exec(
      text,
    );
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(text);
  if (finished === null || requests === null || codes === null) {
    throw new Error(`cannot read h2load's report:\n${text}`);
  }
  const n = (match: RegExpExecArray, i: number) => Number(match[i]);
  return {
    seconds: n(finished, 1) / (finished[2] === "ms" ? 1000 : 1),
    requestsPerSecond: n(finished, 3),
    total: n(requests, 1),
    succeeded: n(requests, 3),
    // h2load counts errored and timed-out requests among the failed ones.
    errors:
      n(requests, 1) - n(requests, 2) + n(requests, 4) + n(codes, 2) + n(codes, 3) + n(codes, 4),
  };
}

/**
 * Latencies in milliseconds from h2load's --log-file (start µs since the epoch, HTTP status, µs to
 * the end of the response), for the requests that got a 2xx response and started at or after
 * `startedFromMicros`.
 */
export function parseH2loadLog(text: string, startedFromMicros = 0): Float64Array {
  const lines = text.split("\n");
  const latencies = new Float64Array(lines.length);
  let count = 0;
  for (const line of lines) {
    const [start, status, micros] = line.split("\t");
    if (status === undefined || micros === undefined || !status.startsWith("2")) continue;
    if (Number(start) < startedFromMicros) continue;
    latencies[count++] = Number(micros) / 1000;
  }
  return latencies.subarray(0, count);
}
