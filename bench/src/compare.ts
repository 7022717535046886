/**
 * Compares builds of our server, or node flags, under one unary load: each variant runs as its own
 * server (pinned to the servers' CPU, every one prepared and warmed up the same way), and the
 * variants are measured in alternating rounds (A B C, then C B A, ...), so a machine whose speed
 * drifts during the run (a shared one does) moves them all alike. Prints each round, then the
 * medians. Calls are checked as the benchmark checks them (our server's /metrics must count every
 * one OK). Nothing is written under results/; the work directory (databases, server logs) is
 * removed unless `--keep` is given or the run failed.
 *
 *   ./dev node --conditions=source bench/src/compare.ts \
 *     --variant 'before=/tmp/before' --variant 'after=.' --variant 'flag=.:--single-threaded-gc' \
 *     [--rounds 6] [--seconds 8] [--warm-up 10] [--connections 50] [--streams 20] [--keep]
 *     [--load grpc|rest-h1] [--header 'grpc-timeout: 5S' ...]
 *
 * `--load grpc` (the default) calls GetUser over gRPC (HTTP/2, `connections × streams`);
 * `--load rest-h1` calls it over REST, `GET /api/v1/users/{id}` on HTTP/1.1 (`connections` in
 * flight, `--streams` unused). `--header` adds a header to every call (a client's deadline, say).
 *
 * A variant is `label=ROOT`, or `label=ROOT:FLAGS` with node flags (space-separated) added after
 * those of the server's start script, and settings of its server as `KEEL_X=value` among them
 * (`off=.:KEEL_LOAD_REPORTS=false`); ROOT is a checkout whose server is built (`./dev build`).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { GetUserRequestSchema } from "@keel/gen/user/v1/user_pb";
import { grpcFrame } from "./grpc-frame.ts";
import { checkBuilt, prepareKeel } from "./keel-setup.ts";
import { killAll, pinThisProcess, preflight, stopAllOnSignals } from "./launch.ts";
import { measure, type Sample, settle } from "./measure.ts";
import { loadCpu, loadOptions, plans, serverCpu } from "./plan.ts";
import { getUser, type LoadContext, restGet, type Scenario, unary } from "./scenarios.ts";
import { median } from "./stats.ts";
import { type RunningTarget, startKeel } from "./targets.ts";

export interface Variant {
  label: string;
  root: string;
  flags: string[];
  /** KEEL_* settings of this variant's server (given among the flags as `KEEL_X=value`). */
  env: Record<string, string>;
}

/**
 * `label=ROOT` or `label=ROOT:FLAGS`, where FLAGS may also hold `KEEL_X=value` settings for the
 * variant's server; throws saying what is wrong.
 */
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
  const words =
    colon < 0
      ? []
      : rest
          .slice(colon + 1)
          .split(" ")
          .filter(Boolean);
  const setting = /^(KEEL_[A-Z0-9_]+)=(.*)$/;
  const flags = words.filter((word) => !setting.test(word));
  const env = Object.fromEntries(
    words.flatMap((word) => {
      const match = setting.exec(word);
      return match === null ? [] : [[match[1] as string, match[2] as string]];
    }),
  );
  const notFlag = flags.find((flag) => !flag.startsWith("-"));
  if (notFlag !== undefined) {
    throw new Error(
      `--variant "${text}": "${notFlag}" is not a node flag (flags start with -) nor a KEEL_X=value setting`,
    );
  }
  return { label, root, flags, env };
}

/** `name: value` as a header, its name lower-case; throws saying what is wrong. */
export function parseHeader(text: string): [string, string] {
  const colon = text.indexOf(":");
  const name = colon < 0 ? "" : text.slice(0, colon).trim().toLowerCase();
  if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(name)) {
    throw new Error(`--header "${text}": expected name: value`);
  }
  return [name, text.slice(colon + 1).trim()];
}

/** `label: /abs/root with FLAGS; …`, for a report's heading. */
export function describeVariants(variants: readonly Variant[]): string {
  return variants
    .map(
      (v) =>
        `${v.label}: ${resolve(v.root)}${v.flags.length > 0 ? ` with ${v.flags.join(" ")}` : ""}`,
    )
    .join("; ");
}

/** A markdown table of each variant's medians (peak RSS: the highest), with its CPU per round. */
export function renderComparison(results: ReadonlyMap<string, readonly Sample[]>): string {
  const lines = [
    "| variant | req/s | CPU µs/req | p50 ms | p99 ms | max/p50 | peak RSS MiB | errors | CPU µs/req per round |",
    "| --- | --: | --: | --: | --: | --: | --: | --: | --- |",
  ];
  for (const [label, rounds] of results) {
    const of = (pick: (r: Sample) => number) => median(rounds.map(pick));
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
      keep: { type: "boolean", default: false },
      load: { type: "string", default: "grpc" },
      header: { type: "string", multiple: true, default: [] },
    },
  });
  const headers = Object.fromEntries(values.header.map(parseHeader));
  if (values.load !== "grpc" && values.load !== "rest-h1") {
    throw new Error(`--load ${values.load}: expected grpc or rest-h1`);
  }
  const rest = values.load === "rest-h1";
  const variants = values.variant.map(parseVariant);
  if (variants.length < 2) throw new Error("give at least two --variant options to compare");
  if (new Set(variants.map((v) => v.label)).size !== variants.length) {
    throw new Error("each --variant needs a label of its own");
  }
  const { rounds, seconds, warmUp, connections, streams } = loadOptions(values);
  preflight();
  pinThisProcess(loadCpu);
  // The harness's own unary load and measurement, with this run's lengths.
  const plan = { ...plans.full, unarySeconds: seconds, warmupSeconds: warmUp };
  const shape = rest
    ? `REST GET /api/v1/users/{id} over HTTP/1.1, ${connections} connections`
    : `${connections} connections × ${streams} streams`;
  const scenario: Scenario = {
    id: "compare",
    title: "Unary GetUser",
    description: `h2load, ${shape}`,
    unit: "req/s",
    variants: [],
    verifiedMethod: getUser,
    load: rest ? restGet(connections) : unary(connections, streams),
  };
  const workDir = await mkdtemp(join(tmpdir(), "keel-compare-"));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(`work directory: ${workDir}`);

  const servers: { label: string; context: LoadContext; samples: Sample[] }[] = [];
  let finished = false;
  try {
    for (const variant of variants) {
      const { main, warning } = checkBuilt(resolve(variant.root));
      if (warning !== undefined) log(`warning (${variant.label}): ${warning}`);
      const dataDir = join(workDir, variant.label);
      const setup = await prepareKeel({
        main,
        dataDir,
        logFile: join(workDir, `${variant.label}-setup.log`),
        updates: 10,
      });
      const target: RunningTarget = await startKeel({
        main,
        env: { ...setup.env, ...variant.env },
        cpu: serverCpu,
        logFile: join(workDir, `${variant.label}.log`),
        nodeFlags: variant.flags,
      });
      const getUserBody = join(workDir, `${variant.label}.bin`);
      await writeFile(getUserBody, grpcFrame(GetUserRequestSchema, { userId: setup.userId }));
      servers.push({
        label: variant.label,
        context: {
          target,
          variant: { label: variant.label, kind: "keel", serverCpu, loadCpu },
          plan,
          workDir,
          authorization: setup.authorization,
          getUserBody,
          userId: setup.userId,
          streamBody: Buffer.alloc(0),
          warmup: false,
          headers,
        },
        samples: [],
      });
    }
    for (const server of servers) {
      log(`warming up ${server.label} for ${warmUp} s`);
      await scenario.load({ ...server.context, warmup: true });
    }
    for (let round = 0; round < rounds; round++) {
      for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
        await settle(server.context.target);
        const { sample, firstError } = await measure(scenario, server.context);
        server.samples.push(sample);
        log(
          `round ${round + 1}/${rounds} ${server.label}: ${sample.rate.toFixed(0)} req/s, ` +
            `${sample.cpuMicrosPer.toFixed(0)} µs CPU/req, p99 ${sample.p99Ms.toFixed(1)} ms, ` +
            `${sample.peakRssMiB.toFixed(0)} MiB, ${sample.errors} errors` +
            (firstError === undefined ? "" : ` (${firstError})`),
        );
      }
    }
    finished = true;
  } finally {
    await Promise.all(servers.map((server) => server.context.target.stop()));
    // Kept when asked, or when something failed: the servers' logs say what.
    if (finished && !values.keep) await rm(workDir, { recursive: true, force: true });
    else log(`kept ${workDir}`);
  }
  const described = describeVariants(variants);
  process.stdout.write(
    `Unary GetUser, ${shape}, ${rounds} rounds of ${seconds} s ` +
      `(${described})\n\n${renderComparison(new Map(servers.map((s) => [s.label, s.samples])))}\n`,
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
