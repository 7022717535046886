/**
 * Compares builds of our server, or node flags, under one unary load: each variant runs as its own
 * server (pinned to the servers' CPU, every one prepared and warmed up the same way), and the
 * variants are measured in alternating rounds (A B C, then C B A, ...), so a machine whose speed
 * drifts during the run (a shared one does) moves them all alike. Prints each round, then the
 * medians. Nothing is written under results/.
 *
 *   ./dev node --conditions=source bench/src/compare.ts \
 *     --variant 'before=/tmp/before' --variant 'after=.' --variant 'flag=.:--single-threaded-gc' \
 *     [--rounds 6] [--seconds 8] [--warm-up 10] [--connections 50] [--streams 20]
 *
 * A variant is `label=ROOT`, or `label=ROOT:FLAGS` with node flags (space-separated) added after
 * those of the server's start script; ROOT is a checkout whose server is built (`./dev build`).
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { GetUserRequestSchema } from "@keel/gen/user/v1/user_pb";
import { grpcFrame } from "./grpc-frame.ts";
import { runH2load } from "./h2load.ts";
import { checkBuilt, type KeelSetup, prepareKeel } from "./keel-setup.ts";
import { killAll, pinThisProcess, preflight, stopAllOnSignals } from "./launch.ts";
import { settle } from "./measure.ts";
import { loadCpu, serverCpu } from "./plan.ts";
import { cpuMicros, processTree, samplePeaks } from "./proc-stats.ts";
import { median } from "./stats.ts";
import { type RunningTarget, startKeel } from "./targets.ts";

export interface Variant {
  label: string;
  root: string;
  flags: string[];
}

/** `label=ROOT` or `label=ROOT:FLAGS`; throws saying what is wrong. */
export function parseVariant(text: string): Variant {
  const eq = text.indexOf("=");
  const label = eq < 0 ? "" : text.slice(0, eq).trim();
  if (!/^[\w.-]+$/.test(label)) {
    throw new Error(
      `--variant "${text}": expected label=ROOT or label=ROOT:FLAGS (label: letters, digits, . _ -)`,
    );
  }
  const rest = text.slice(eq + 1);
  const colon = rest.indexOf(":");
  const root = (colon < 0 ? rest : rest.slice(0, colon)).trim();
  if (root === "") throw new Error(`--variant "${text}": the checkout (ROOT) is missing`);
  const flags =
    colon < 0
      ? []
      : rest
          .slice(colon + 1)
          .split(" ")
          .filter(Boolean);
  const notFlag = flags.find((flag) => !flag.startsWith("-"));
  if (notFlag !== undefined) {
    throw new Error(`--variant "${text}": "${notFlag}" is not a node flag (flags start with -)`);
  }
  return { label, root, flags };
}

/** One measured round of one variant. */
export interface Round {
  rate: number;
  cpuMicrosPer: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  peakRssMiB: number;
  errors: number;
}

/** A markdown table of each variant's medians (peak RSS: the highest), with its CPU per round. */
export function renderComparison(results: ReadonlyMap<string, readonly Round[]>): string {
  const lines = [
    "| variant | req/s | CPU µs/req | p50 ms | p99 ms | max/p50 | peak RSS MiB | errors | CPU µs/req per round |",
    "| --- | --: | --: | --: | --: | --: | --: | --: | --- |",
  ];
  for (const [label, rounds] of results) {
    const of = (pick: (r: Round) => number) => median(rounds.map(pick));
    lines.push(
      `| ${label} | ${of((r) => r.rate).toFixed(0)} | ${of((r) => r.cpuMicrosPer).toFixed(1)} | ` +
        `${of((r) => r.p50Ms).toFixed(2)} | ${of((r) => r.p99Ms).toFixed(2)} | ` +
        `${of((r) => r.maxMs / r.p50Ms).toFixed(2)} | ` +
        `${Math.max(...rounds.map((r) => r.peakRssMiB)).toFixed(0)} | ` +
        `${rounds.reduce((sum, r) => sum + r.errors, 0)} | ` +
        `${rounds.map((r) => r.cpuMicrosPer.toFixed(0)).join(", ")} |`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      variant: { type: "string", multiple: true, default: [] },
      rounds: { type: "string", default: "6" },
      seconds: { type: "string", default: "8" },
      "warm-up": { type: "string", default: "10" },
      connections: { type: "string", default: "50" },
      streams: { type: "string", default: "20" },
    },
  });
  const variants = values.variant.map(parseVariant);
  if (variants.length < 2) throw new Error("give at least two --variant options to compare");
  if (new Set(variants.map((v) => v.label)).size !== variants.length) {
    throw new Error("each --variant needs a label of its own");
  }
  const number = (name: keyof typeof values) => {
    const value = Number(values[name]);
    if (!Number.isInteger(value) || value < 1)
      throw new Error(`--${name} must be a whole number ≥ 1`);
    return value;
  };
  const [rounds, seconds, warmUp] = [number("rounds"), number("seconds"), number("warm-up")];
  const [connections, streams] = [number("connections"), number("streams")];
  preflight();
  pinThisProcess(loadCpu);
  const workDir = await mkdtemp(join(tmpdir(), "keel-compare-"));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(`work directory: ${workDir}`);

  const servers: {
    variant: Variant;
    target: RunningTarget;
    setup: KeelSetup;
    bodyFile: string;
    rounds: Round[];
  }[] = [];
  try {
    for (const variant of variants) {
      const { main, warning } = checkBuilt(resolve(variant.root));
      if (warning !== undefined) log(`warning (${variant.label}): ${warning}`);
      const setup = await prepareKeel({
        main,
        dataDir: join(workDir, variant.label),
        logFile: join(workDir, `${variant.label}-setup.log`),
        updates: 10,
      });
      const target = await startKeel({
        main,
        env: setup.env,
        cpu: serverCpu,
        logFile: join(workDir, `${variant.label}.log`),
        nodeFlags: variant.flags,
      });
      const bodyFile = join(workDir, `${variant.label}.bin`);
      await writeFile(bodyFile, grpcFrame(GetUserRequestSchema, { userId: setup.userId }));
      servers.push({ variant, target, setup, bodyFile, rounds: [] });
    }
    const load = (
      server: (typeof servers)[number],
      durationSeconds: number,
      onMeasuring?: () => void,
    ) =>
      runH2load({
        url: `http://127.0.0.1:${server.target.port}/user.v1.UserService/GetUser`,
        bodyFile: server.bodyFile,
        headers: { authorization: server.setup.authorization },
        connections,
        streamsPerConnection: streams,
        durationSeconds,
        warmUpSeconds: 1,
        onMeasuring,
        cpu: loadCpu,
        logFile: join(workDir, "h2load.log"),
        timeoutSeconds: durationSeconds + 30,
      });
    for (const server of servers) {
      log(`warming up ${server.variant.label} for ${warmUp} s`);
      await load(server, warmUp);
    }
    for (let round = 0; round < rounds; round++) {
      for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
        await settle(server.target);
        const pids = processTree(server.target.pid);
        let cpuBefore = cpuMicros(pids);
        const peaks = samplePeaks(server.target.pid, { intervalMs: 100, fds: false });
        const result = await load(server, seconds, () => {
          cpuBefore = cpuMicros(pids);
        });
        const measured: Round = {
          rate: result.requestsPerSecond,
          cpuMicrosPer: (cpuMicros(pids) - cpuBefore) / Math.max(1, result.succeeded),
          p50Ms: result.latencyMs.p50,
          p99Ms: result.latencyMs.p99,
          maxMs: result.latencyMs.max,
          peakRssMiB: peaks.stop().rssBytes / 2 ** 20,
          errors: result.errors,
        };
        server.rounds.push(measured);
        log(
          `round ${round + 1}/${rounds} ${server.variant.label}: ${measured.rate.toFixed(0)} req/s, ` +
            `${measured.cpuMicrosPer.toFixed(0)} µs CPU/req, p99 ${measured.p99Ms.toFixed(1)} ms, ` +
            `${measured.peakRssMiB.toFixed(0)} MiB, ${measured.errors} errors`,
        );
      }
    }
  } finally {
    await Promise.all(servers.map((server) => server.target.stop()));
  }
  const described = variants
    .map(
      (v) =>
        `${v.label}: ${resolve(v.root)}${v.flags.length > 0 ? ` with ${v.flags.join(" ")}` : ""}`,
    )
    .join("; ");
  process.stdout.write(
    `Unary GetUser, ${connections} connections × ${streams} streams, ${rounds} rounds of ${seconds} s ` +
      `(${described})\n\n${renderComparison(new Map(servers.map((s) => [s.variant.label, s.rounds])))}\n`,
  );
}

if (import.meta.main) {
  stopAllOnSignals("compare");
  main().catch((err: unknown) => {
    killAll();
    process.stderr.write(`compare: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
