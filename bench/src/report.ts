import type { Sample } from "./measure.ts";
import type { Plan } from "./plan.ts";
import type { ProfileRun } from "./profile.ts";
import type { ScenarioResult } from "./runner.ts";
import type { TargetKind } from "./scenarios.ts";

/** Where and with what the run happened. */
export interface MachineInfo {
  date: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  h2load: string;
  packages: Record<string, string>;
}

/** A goal of the issue, checked against this run. */
export interface TargetCheck {
  goal: string;
  measured: string;
  /** undefined: not measured in this run. */
  met: boolean | undefined;
}

const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "—");
const dec = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "—");
const percent = (share: number | undefined) =>
  share === undefined || !Number.isFinite(share) ? "—" : `${Math.round(share * 100)}%`;
const ratio = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : "—");

function find(results: ScenarioResult[], id: string, kind: TargetKind, workers?: number) {
  return results
    .find((r) => r.scenario.id === id)
    ?.variants.find((v) => v.variant.kind === kind && v.variant.workers === workers);
}

/** The issue's targets, each measured in this run (ratios within the same run). */
export function checkTargets(results: ScenarioResult[]): TargetCheck[] {
  const skipped = (id: string) => results.find((r) => r.scenario.id === id)?.skipped;
  const notMeasured = (id: string): TargetCheck["measured"] =>
    `not measured: ${skipped(id) ?? "scenario not run"}`;
  const checks: TargetCheck[] = [];

  const keel1000 = find(results, "unary-1000", "keel")?.median;
  const grpc1000 = find(results, "unary-1000", "grpc-js")?.median;
  checks.push(
    keel1000 && grpc1000
      ? {
          goal: "full-chain server ≥ 1.0× bare grpc-js requests/s on one core (1000 in flight)",
          measured: `${ratio(keel1000.rate / grpc1000.rate)} (${int(keel1000.rate)} vs ${int(grpc1000.rate)} req/s)`,
          met: keel1000.rate >= grpc1000.rate,
        }
      : {
          goal: "full-chain server ≥ 1.0× bare grpc-js requests/s on one core",
          measured: notMeasured("unary-1000"),
          met: undefined,
        },
  );
  const engine1000 = find(results, "unary-1000", "engine")?.median;
  checks.push(
    engine1000 && grpc1000
      ? {
          goal: "the engine alone ≤ bare grpc-js's CPU per call (1000 in flight)",
          measured: `${ratio(engine1000.cpuMicrosPer / grpc1000.cpuMicrosPer)} (${dec(engine1000.cpuMicrosPer, 1)} vs ${dec(grpc1000.cpuMicrosPer, 1)} µs)`,
          met: engine1000.cpuMicrosPer <= grpc1000.cpuMicrosPer,
        }
      : {
          goal: "the engine alone ≤ bare grpc-js's CPU per call",
          measured: notMeasured("unary-1000"),
          met: undefined,
        },
  );
  const keel50 = find(results, "unary-50", "keel")?.median;
  checks.push({
    goal: "p99 ≤ 10 ms with 50 requests in flight",
    measured: keel50 ? `p99 ${dec(keel50.p99Ms)} ms` : notMeasured("unary-50"),
    met: keel50 ? keel50.p99Ms <= 10 : undefined,
  });
  checks.push({
    goal: "1000 in flight: no stream starved (max ≤ 5× p50)",
    measured: keel1000
      ? `max ${dec(keel1000.maxMs, 1)} ms = ${ratio(keel1000.maxMs / keel1000.p50Ms)} p50 (${dec(keel1000.p50Ms, 1)} ms)`
      : notMeasured("unary-1000"),
    met: keel1000 ? keel1000.maxMs <= 5 * keel1000.p50Ms : undefined,
  });
  checks.push({
    goal: "peak RSS under the 1000-in-flight load ≤ 150 MiB",
    measured: keel1000 ? `${dec(keel1000.peakRssMiB, 0)} MiB` : notMeasured("unary-1000"),
    met: keel1000 ? keel1000.peakRssMiB <= 150 : undefined,
  });
  const one = find(results, "cluster", "keel")?.median;
  const two = find(results, "cluster", "keel", 2)?.median;
  checks.push({
    goal: "cluster mode scales ≥ 1.8× on 2 cores",
    measured:
      one && two
        ? `${ratio(two.rate / one.rate)} (${int(two.rate)} vs ${int(one.rate)} req/s)`
        : notMeasured("cluster"),
    met: one && two ? two.rate / one.rate >= 1.8 : undefined,
  });
  // One process on one core, and cluster mode on both cores (sharing them with h2load): the
  // target does not name a core count, and a server holding 10,000 callers runs on more than one.
  const held = (s: Sample | undefined) =>
    s !== undefined && s.errors === 0 && (s.connectionsHeld ?? 0) >= 10_000;
  const describeMany = (label: string, v: ReturnType<typeof find>) =>
    v === undefined
      ? undefined
      : `${label}: ${int(v.median.connectionsHeld ?? Number.NaN)} held (median peak), ` +
        `${v.median.errors} errors in ${v.samples.length} runs`;
  const many = find(results, "connections-10k", "keel");
  const manyCluster = find(results, "connections-10k", "keel", 2);
  checks.push({
    goal: "10,000 concurrent connections held with zero errors",
    measured: many
      ? [describeMany("1 process", many), describeMany("KEEL_WORKERS=2", manyCluster)]
          .filter((text) => text !== undefined)
          .join("; ")
      : notMeasured("connections-10k"),
    met: many ? held(many.median) || held(manyCluster?.median) : undefined,
  });
  const heldOne = find(results, "connections-held", "keel");
  checks.push({
    goal: "10,000 connections held at once by one process, zero errors",
    measured: heldOne
      ? `${int(heldOne.median.connectionsHeld ?? Number.NaN)} held (median peak), ` +
        `${heldOne.median.errors} errors, ${int(heldOne.median.cpuMicrosPer)} µs CPU per call, ` +
        `p99 ${dec(heldOne.median.p99Ms)} ms`
      : notMeasured("connections-held"),
    met: heldOne ? held(heldOne.median) : undefined,
  });
  return checks;
}

function row(cells: readonly string[]): string {
  return `| ${cells.join(" | ")} |`;
}

function sampleCells(s: Sample, withConnections: boolean, withGenerator = false): string[] {
  return [
    int(s.rate),
    dec(s.p50Ms),
    dec(s.p99Ms),
    dec(s.maxMs),
    int(s.cpuMicrosPer),
    dec(s.peakRssMiB, 0),
    String(s.errors),
    ...(withConnections ? [int(s.connectionsHeld ?? Number.NaN)] : []),
    ...(withGenerator ? [percent(s.generatorCpuShare)] : []),
    percent(s.foreignCpuShare),
  ];
}

function scenarioSection(result: ScenarioResult, plan: Plan): string[] {
  const { scenario } = result;
  const lines = [`### ${scenario.title}`, "", scenario.description, ""];
  if (result.skipped !== undefined) return [...lines, `**Skipped**: ${result.skipped}`, ""];
  const connections = scenario.countConnections === true;
  const streaming = scenario.unit === "msg/s";
  const per = streaming ? "msg" : "req";
  lines.push(
    row([
      "server",
      scenario.unit,
      "p50 ms",
      "p99 ms",
      "max ms",
      `CPU µs/${per}`,
      "peak RSS MiB",
      "errors",
      ...(connections ? ["connections held"] : []),
      ...(streaming ? ["client CPU"] : []),
      "others on its core",
    ]),
    row([
      "---",
      ...Array<string>(7).fill("--:"),
      ...(connections ? ["--:"] : []),
      ...(streaming ? ["--:"] : []),
      "--:",
    ]),
    ...result.variants.map((v) =>
      row([v.variant.label, ...sampleCells(v.median, connections, streaming)]),
    ),
    "",
  );
  const keel = result.variants.find(
    (v) => v.variant.kind === "keel" && v.variant.workers === undefined,
  );
  const others = result.variants.filter((v) => v !== keel);
  const cluster = others.find((v) => v.variant.workers !== undefined);
  if (keel !== undefined && cluster !== undefined) {
    lines.push(
      `${cluster.variant.label}: ${ratio(cluster.median.rate / keel.median.rate)} the ` +
        `${scenario.unit} of one process.`,
      "",
    );
  } else if (keel !== undefined && others.length > 0) {
    lines.push(
      `Our server against each: ${others
        .map(
          (o) =>
            `${o.variant.label} ${ratio(keel.median.rate / o.median.rate)} the ${scenario.unit}, ` +
            `${ratio(keel.median.cpuMicrosPer / o.median.cpuMicrosPer)} the CPU per ${per}`,
        )
        .join("; ")}.`,
      "",
    );
  }
  if (streaming) {
    lines.push(
      `Latency columns: time for one call to deliver its ${plan.streamMessages} messages. Client ` +
        "CPU: the load generator's CPU time over the run; near 100% the client, not the server, " +
        "is the limit, and the server's CPU per message is the figure to compare.",
      "",
    );
  }
  for (const v of result.variants.filter((v) => v.firstError !== undefined)) {
    lines.push(`First error of ${v.variant.label}: \`${v.firstError}\``, "");
  }
  return lines;
}

function samplesAppendix(results: ScenarioResult[]): string[] {
  const lines = [
    "<details><summary>Every sample, in the order measured per server</summary>",
    "",
    row([
      "scenario",
      "server",
      "rate",
      "p50 ms",
      "p99 ms",
      "max ms",
      "CPU µs",
      "RSS MiB",
      "errors",
      "others on its core",
    ]),
    row(["---", "---", ...Array<string>(8).fill("--:")]),
  ];
  for (const result of results) {
    for (const v of result.variants) {
      for (const s of v.samples) {
        lines.push(row([result.scenario.id, v.variant.label, ...sampleCells(s, false)]));
      }
    }
  }
  return [...lines, "", "</details>", ""];
}

/** The results page: targets, one table per scenario, how it was measured, every sample. */
export function renderReport(options: {
  plan: Plan;
  machine: MachineInfo;
  results: ScenarioResult[];
  command: string;
  notes: string[];
}): string {
  const { plan, machine, results } = options;
  const targets = checkTargets(results);
  const met = (m: boolean | undefined) => (m === undefined ? "—" : m ? "yes" : "**no**");
  return [
    "# Benchmarks: our server against bare grpc-js and bare connect-node",
    "",
    `Written by \`${options.command}\` on ${machine.date} (${plan.mode} run: ${plan.repetitions} ` +
      `repetition${plan.repetitions === 1 ? "" : "s"}, servers measured in turns, medians). ` +
      "Chart: [chart.svg](chart.svg); where our server's CPU goes: [profile.md](profile.md).",
    "",
    `Machine: ${machine.cpus} CPUs (${machine.cpuModel}), ${dec(machine.memoryGiB, 0)} GiB, Linux ` +
      `${machine.kernel}; Node ${machine.node}; ${machine.h2load}; ` +
      Object.entries(machine.packages)
        .map(([name, version]) => `${name} ${version}`)
        .join(", ") +
      ".",
    "",
    "## Targets",
    "",
    row(["target", "measured", "met"]),
    row(["---", "---", "---"]),
    ...targets.map((t) => row([t.goal, t.measured, met(t.met)])),
    "",
    "## Results",
    "",
    ...results.flatMap((r) => scenarioSection(r, plan)),
    "## How it is measured",
    "",
    "- **Servers.** *keel (full chain)*: `packages/server/dist/main.js` as users run it — every " +
      "interceptor (request id, audit, recovery, logging at `info`, deadlines, JWT authentication, " +
      "rate limits, authorization, validation), Prometheus metrics, tracing at its default sampling " +
      "ratio (0.1, no exporter configured), SQLite, `NODE_ENV=production`, a configured JWT secret; " +
      "GetUser of an existing user with an admin token. One change from the defaults: the " +
      "per-caller rate limit is raised (`KEEL_RATE_LIMIT_RPS`/`KEEL_RATE_LIMIT_BURST` = 1,000,000), " +
      "since the default 100 calls/s per caller and method would throttle the benchmark's one " +
      "caller, which is not what per-caller limits are for. It listens on 127.0.0.1. " +
      "*keel engine (bare)*: `bench/src/peers/engine-peer.ts`, @keel/engine with no interceptors " +
      "and no store, answering what the other bare peers answer. " +
      "*grpc-js (bare)*: `bench/src/peers/grpc-js-peer.ts`, @grpc/grpc-js with protobuf-es " +
      "(de)serialization. *connect-node (bare)*: `bench/src/peers/connect-peer.ts`, " +
      "`connectNodeAdapter` on `http2.createServer`. The peers answer the same user (same fields) " +
      "built per call, with no interceptors and no store.",
    "- **Load.** h2load (nghttp2-client) posts one gRPC-framed GetUserRequest with " +
      "`content-type: application/grpc`, `te: trailers` and the same `authorization` header to " +
      "every server. Latency percentiles come from h2load's per-request log (nearest rank).",
    "- **One core each.** Unless a scenario says otherwise, each server runs under `taskset -c 1` " +
      "and the load generator under `taskset -c 0`, so requests/s compare per core.",
    "- **Success.** Every server answers one GetUser through a real gRPC client before its load. " +
      "gRPC errors are HTTP 200 with `grpc-status` in the trailers, which h2load does not read: " +
      "for our server, the change of `grpc_server_handled_total` in its /metrics must show every " +
      "call OK; any other code, or fewer OK calls than h2load's successes, counts as errors.",
    "- **CPU and memory.** Server CPU = user + system time from `/proc/<pid>/stat` (all its " +
      "processes) over the load, divided by the requests (or messages) completed. Peak RSS = the " +
      "highest `VmRSS` (summed over its processes) sampled every 100 ms during the load. Each " +
      `server gets an unmeasured warm-up load of ${plan.warmupSeconds} s first. Errors are ` +
      "summed over the repetitions; " +
      "everything else is the median.",
    "- **Opening second.** A timed unary load opens new connections, which all send their first " +
      "calls at the same instant; h2load makes calls for its first second but leaves them out of " +
      "every figure (`--warm-up-time=1s`; the calls that started in it and ended later, which " +
      "h2load still logs, are left out of the latencies too), and server CPU is counted from " +
      "its end. What is " +
      "measured is a steady state of that many calls in flight, not the order in which a server " +
      "reads fifty new connections (which, left in, put 1–3 s waits into the max of every server " +
      "here, bare grpc-js included).",
    "- **A shared machine.** Other work may run on the same cores (other engineers' tests, for " +
      `instance). Before each measurement the harness waits up to ${plan.quietWaitSeconds} s for ` +
      "other processes to use under 10% of a CPU. *Others on its core* is the busy time of the " +
      "server's CPU not spent by the " +
      "server, over the load's length (the harness itself stays on CPU 0): above a few percent, " +
      "that sample was disturbed. Alternating the servers spreads such disturbance over all of them.",
    ...options.notes.map((note) => `- ${note}`),
    "",
    ...samplesAppendix(results),
  ].join("\n");
}

/** The profile page. */
export function renderProfile(profile: ProfileRun, body: string): string {
  return [
    "# Where our server spends its CPU",
    "",
    `Our server (\`packages/server/dist/main.js\`, Node.js with \`--cpu-prof\`, pinned to CPU 1) under unary ` +
      `GetUser with 1000 calls in flight (h2load, 50 connections × 20 streams, on CPU 0) for ` +
      `${profile.seconds} s after a warm-up: ${int(profile.requestsPerSecond)} req/s while ` +
      "profiled. Only samples taken during the measured load count. Written by " +
      "`bench/src/run.ts`; summarize any profile with `./dev node --conditions=source bench/src/profile-summary.ts FILE`.",
    "",
    body,
  ].join("\n");
}
