import { Code } from "@connectrpc/connect";
import type { LoadResult } from "./load-generator.ts";

/** What `keel perf --json` prints: one object. */
export interface PerfSummary {
  method: string;
  url: string;
  protocol: string;
  concurrency: number;
  connections: number;
  threads: number;
  /** Calls finished, whatever their status: the sum of `statusCodes`. */
  requests: number;
  durationSeconds: number;
  requestsPerSecond: number;
  /** Latencies of all calls in milliseconds; percentiles within 1%, min, mean and max exact. */
  latencyMs: { min: number; mean: number; p50: number; p90: number; p99: number; max: number };
  /** Calls by gRPC status name (OK, UNAVAILABLE, …); only those that occurred. */
  statusCodes: Record<string, number>;
  /** The first message of each failing status. */
  errors: Record<string, string>;
  /** Messages received by a server-streaming method. */
  messages?: number;
  /**
   * CPU time this process used while measuring, in seconds, and as a share of one core: near the
   * number of threads, the load generator rather than the server may be the limit.
   */
  clientCpu: { seconds: number; shareOfOneCore: number };
}

export interface PerfRun {
  method: string;
  url: string;
  protocol: string;
  concurrency: number;
  connections: number;
  threads: number;
  streaming: boolean;
  messages: number;
  /** CPU time used while measuring, in milliseconds (process.cpuUsage). */
  cpuMs: number;
}

/** The gRPC name of a status code: 0 → OK, Code.ResourceExhausted → RESOURCE_EXHAUSTED. */
export function statusName(code: number): string {
  if (code === 0) return "OK";
  const name = Code[code];
  if (name === undefined) return String(code);
  return name === "Canceled" ? "CANCELLED" : name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

export function summarize(run: PerfRun, result: LoadResult): PerfSummary {
  const { latencies, byCode } = result;
  const statusCodes: Record<string, number> = {};
  for (let code = 0; code < byCode.length; code++) {
    const n = byCode[code] as number;
    if (n > 0) statusCodes[statusName(code)] = n;
  }
  const errors: Record<string, string> = {};
  for (const [code, message] of result.firstErrors) errors[statusName(code)] = message;
  const round = (ms: number) => (Number.isNaN(ms) ? 0 : Math.round(ms * 1000) / 1000);
  return {
    method: run.method,
    url: run.url,
    protocol: run.protocol,
    concurrency: run.concurrency,
    connections: run.connections,
    threads: run.threads,
    requests: latencies.count,
    durationSeconds: Math.round(result.elapsedMs) / 1000,
    requestsPerSecond: Math.round((latencies.count * 10_000) / result.elapsedMs) / 10,
    latencyMs: {
      min: round(latencies.min),
      mean: round(latencies.mean),
      p50: round(latencies.quantile(0.5)),
      p90: round(latencies.quantile(0.9)),
      p99: round(latencies.quantile(0.99)),
      max: round(latencies.max),
    },
    statusCodes,
    errors,
    ...(run.streaming ? { messages: run.messages } : {}),
    clientCpu: {
      seconds: Math.round(run.cpuMs) / 1000,
      shareOfOneCore: Math.round((run.cpuMs / result.elapsedMs) * 1000) / 1000,
    },
  };
}

/** The summary for people. */
export function formatSummary(s: PerfSummary): string {
  const ms = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
  const l = s.latencyMs;
  const lines = [
    `${s.method} over ${s.protocol} to ${s.url}: ${s.concurrency} workers on ${s.connections} connection${s.connections === 1 ? "" : "s"}${s.threads === 1 ? "" : ` in ${s.threads} threads`}`,
    `  requests     ${s.requests} in ${s.durationSeconds.toFixed(2)} s: ${s.requestsPerSecond.toFixed(1)} requests/s`,
    `  latency ms   p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  p99 ${ms(l.p99)}  max ${ms(l.max)}  (min ${ms(l.min)}, mean ${ms(l.mean)})`,
  ];
  if (s.messages !== undefined) {
    const each = s.requests === 0 ? 0 : s.messages / s.requests;
    lines.push(`  messages     ${s.messages} received (${each.toFixed(1)} per call)`);
  }
  const cpu = s.clientCpu;
  // Only a run long enough to measure says anything about the generator's limit.
  const busy = s.durationSeconds >= 1 && cpu.shareOfOneCore > 0.9 * s.threads;
  lines.push(
    `  keel perf    ${cpu.seconds.toFixed(2)} s CPU, ${(cpu.shareOfOneCore * 100).toFixed(0)}% of one core${busy ? ": the load generator may be the limit (try --threads)" : ""}`,
  );
  lines.push("  status");
  for (const [name, n] of Object.entries(s.statusCodes)) {
    const first = s.errors[name];
    lines.push(
      `    ${name.padEnd(20)} ${String(n).padStart(9)}${first === undefined ? "" : `  first: ${first}`}`,
    );
  }
  return lines.join("\n");
}

/** What to change when most calls fail with a code, for the codes a benchmark meets. */
const remedies: Record<string, string> = {
  RESOURCE_EXHAUSTED:
    "you are measuring the server's limits, not the server: to benchmark, start it with the limits raised on purpose (KEEL_RATE_LIMIT_RPS and KEEL_RATE_LIMIT_BURST; for CreateUser KEEL_CREATE_USER_RATE_LIMIT_PER_MINUTE, _BURST and KEEL_PASSWORD_HASH_PER_CLIENT) and say so with the figures",
  UNAUTHENTICATED: "you are measuring the refusal of a token: check --token, or leave it out",
  PERMISSION_DENIED: "you are measuring a refusal: the token lacks the role the method needs",
  DEADLINE_EXCEEDED: "calls ran out of time: the server is overloaded, or raise --timeout",
  UNAVAILABLE: "the server could not be reached or is shutting down",
};

/**
 * A warning when more than half the calls failed with one code: then the figures measure that
 * failure (usually a rate limit) rather than the method. Undefined otherwise.
 */
export function failureWarning(s: PerfSummary): string | undefined {
  for (const [name, n] of Object.entries(s.statusCodes)) {
    if (name === "OK" || n * 2 <= s.requests) continue;
    const share = Math.round((n / s.requests) * 100);
    const remedy = remedies[name] ?? "the figures describe that failure, not the method";
    const first = s.errors[name];
    return `keel perf: warning: ${n} of ${s.requests} calls (${share}%) failed with ${name}${first === undefined ? "" : ` ("${first}")`}; ${remedy}`;
  }
  return undefined;
}
