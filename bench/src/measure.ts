import { availableParallelism } from "node:os";
import { cpuBusyMicros, cpuMicros, openFds, processTree, samplePeaks } from "./proc-stats.ts";
import type { LoadContext, Scenario } from "./scenarios.ts";
import { median } from "./stats.ts";
import type { RunningTarget } from "./targets.ts";

/** One measured load of one target. */
export interface Sample {
  /** Requests per second, or messages per second for streaming. */
  rate: number;
  /** Requests (or messages) that succeeded. */
  completed: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The server's user + system CPU time per request (or message), all its processes. */
  cpuMicrosPer: number;
  /** Highest resident memory of the server's processes during the load, sampled every 100 ms. */
  peakRssMiB: number;
  /** Failed requests, non-2xx responses, and for our server calls that did not end OK. */
  errors: number;
  /** Peak open descriptors above idle, when the scenario counts connections. */
  connectionsHeld?: number;
  /** The load generator's CPU time over the load's length (streaming client only). */
  generatorCpuShare?: number;
  /**
   * Share of the server's CPU taken by other processes during the load (the machine may be
   * shared): busy time of its core minus its own, over the load's length. Pinned servers only.
   */
  foreignCpuShare?: number;
}

/**
 * Waits (at most 20 s) until the server is idle, using under 5% of a CPU over 250 ms: a server
 * still working off a previous load (for example thousands of closing connections) must not
 * count against the next one.
 */
export async function settle(target: RunningTarget): Promise<void> {
  const pids = processTree(target.pid);
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const before = cpuMicros(pids);
    await new Promise((resolve) => setTimeout(resolve, 250));
    if (cpuMicros(pids) - before < 0.05 * 250_000) return;
  }
}

/**
 * Waits, at most `maxSeconds`, for a moment when processes other than the benchmark's servers
 * use under 10% of one CPU over half a second: the machine may be shared, and a load measured
 * while something else runs is disturbed. Returns the share still used by others when it gave up.
 */
export async function waitForQuiet(
  targets: readonly RunningTarget[],
  maxSeconds: number,
): Promise<number | undefined> {
  const pids = targets.flatMap((t) => processTree(t.pid));
  const cores = Array.from({ length: availableParallelism() }, (_, i) => i);
  const busy = () => cores.reduce((sum, cpu) => sum + cpuBusyMicros(cpu), 0) - cpuMicros(pids);
  const deadline = Date.now() + maxSeconds * 1000;
  let others = 0;
  do {
    const before = busy();
    await new Promise((resolve) => setTimeout(resolve, 500));
    others = (busy() - before) / 500_000;
    if (others < 0.1) return undefined;
  } while (Date.now() < deadline);
  return others;
}

/** Runs one load, measuring the server's CPU time and peak memory around it. */
export async function measure(
  scenario: Scenario,
  ctx: LoadContext,
): Promise<{ sample: Sample; firstError: string | undefined }> {
  const pids = processTree(ctx.target.pid);
  const method = scenario.verifiedMethod;
  const handledBefore = method === undefined ? undefined : await ctx.target.handled?.(method);
  const idleFds = scenario.countConnections === true ? openFds(pids) : 0;
  const serverCpu = ctx.variant.serverCpu;
  let coreBefore = serverCpu === undefined ? Number.NaN : cpuBusyMicros(serverCpu);
  let startedAt = performance.now();
  let cpuBefore = cpuMicros(pids);
  // A load with a warm-up of its own says when its measured part begins.
  const startMeasuring = () => {
    coreBefore = serverCpu === undefined ? Number.NaN : cpuBusyMicros(serverCpu);
    startedAt = performance.now();
    cpuBefore = cpuMicros(pids);
  };
  const sampler = samplePeaks(ctx.target.pid, {
    intervalMs: scenario.countConnections === true ? 250 : 100,
    fds: scenario.countConnections === true,
  });
  let peaks: { rssBytes: number; fds: number };
  let outcome: Awaited<ReturnType<Scenario["load"]>>;
  try {
    outcome = await scenario.load({ ...ctx, startMeasuring });
  } finally {
    peaks = sampler.stop();
  }
  const cpu = cpuMicros(pids) - cpuBefore;
  const coreBusy = serverCpu === undefined ? Number.NaN : cpuBusyMicros(serverCpu) - coreBefore;
  const elapsedMicros = (performance.now() - startedAt) * 1000;
  let errors = outcome.errors;
  let firstError = outcome.firstError;
  if (method !== undefined && handledBefore !== undefined && ctx.target.handled !== undefined) {
    // gRPC errors are HTTP 200 with grpc-status in the trailers, which h2load does not read: the
    // server's own count says whether every call it finished ended OK.
    const after = await ctx.target.handled(method);
    const notOk = after.notOk - handledBefore.notOk;
    const missing = Math.max(0, outcome.completed - (after.ok - handledBefore.ok));
    errors += notOk + missing;
    if (notOk + missing > 0) {
      firstError ??= `${notOk} calls did not end OK and ${missing} responses were not counted OK in /metrics`;
    }
  }
  return {
    sample: {
      rate: outcome.rate,
      completed: outcome.completed,
      p50Ms: outcome.latencyMs.p50,
      p99Ms: outcome.latencyMs.p99,
      maxMs: outcome.latencyMs.max,
      cpuMicrosPer: outcome.completed === 0 ? Number.NaN : cpu / outcome.completed,
      peakRssMiB: peaks.rssBytes / 2 ** 20,
      errors,
      ...(Number.isNaN(coreBusy)
        ? {}
        : { foreignCpuShare: Math.max(0, coreBusy - cpu) / elapsedMicros }),
      ...(scenario.countConnections === true ? { connectionsHeld: peaks.fds - idleFds } : {}),
      ...(outcome.generatorCpuShare === undefined
        ? {}
        : { generatorCpuShare: outcome.generatorCpuShare }),
    },
    firstError,
  };
}

/** Each figure's median over the samples. */
export function medianSample(samples: readonly Sample[]): Sample {
  const of = (pick: (s: Sample) => number) => median(samples.map(pick));
  const optional = (pick: (s: Sample) => number | undefined) => {
    const values = samples.flatMap((s) => {
      const value = pick(s);
      return value === undefined ? [] : [value];
    });
    return values.length === 0 ? undefined : median(values);
  };
  const held = optional((s) => s.connectionsHeld);
  const generator = optional((s) => s.generatorCpuShare);
  const foreign = optional((s) => s.foreignCpuShare);
  return {
    rate: of((s) => s.rate),
    completed: of((s) => s.completed),
    p50Ms: of((s) => s.p50Ms),
    p99Ms: of((s) => s.p99Ms),
    maxMs: of((s) => s.maxMs),
    cpuMicrosPer: of((s) => s.cpuMicrosPer),
    peakRssMiB: of((s) => s.peakRssMiB),
    // Errors are not a median: every one counts.
    errors: samples.reduce((sum, s) => sum + s.errors, 0),
    ...(held === undefined ? {} : { connectionsHeld: held }),
    ...(generator === undefined ? {} : { generatorCpuShare: generator }),
    ...(foreign === undefined ? {} : { foreignCpuShare: foreign }),
  };
}
