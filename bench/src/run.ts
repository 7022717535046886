/**
 * The benchmark: our server (full chain, as users run it) against a bare grpc-js server and a
 * bare connect-node server, driven by h2load, in turns, repeated; writes bench/results/README.md,
 * chart.svg, results.json and profile.md. Needs `./dev build` first and h2load
 * (`apt-get install nghttp2-client`).
 *
 *   ./dev node --conditions=source bench/src/run.ts [--quick] [--only=ID,ID] [--no-profile]
 *     [--server-root=DIR [--server-note=TEXT]] [--out=DIR] [--keep]
 *
 * --quick: one repetition of shorter loads (about six minutes); --only: these scenarios (unary-1,
 * unary-50, unary-1000, stream, connections-10k, connections-held, cluster); --server-root: measure the
 * packages/server/dist/main.js of another checkout (a build of another commit, say) instead of
 * this one's, described in the report by --server-note (default: its git commit); --out: write
 * the results there instead of bench/results; --keep: keep the work directory (logs, database,
 * CPU profile).
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { GetUserRequestSchema, StreamUserActivitiesRequestSchema } from "@keel/gen/user/v1/user_pb";
import { renderChart } from "./chart.ts";
import { grpcFrame } from "./grpc-frame.ts";
import { checkBuilt, prepareKeel } from "./keel-setup.ts";
import { killAll, pinThisProcess, preflight, stopAllOnSignals } from "./launch.ts";
import { loadCpu, plans } from "./plan.ts";
import { type ProfileRun, profileKeel } from "./profile.ts";
import { formatSummary } from "./profile-summary.ts";
import { type MachineInfo, renderProfile, renderReport } from "./report.ts";
import { runScenario, type ScenarioResult } from "./runner.ts";
import { scenarios } from "./scenarios.ts";

const benchDir = fileURLToPath(new URL("..", import.meta.url));
const repoRoot = join(benchDir, "..");

function machineInfo(): MachineInfo {
  const version = (pkg: string) =>
    (
      JSON.parse(readFileSync(join(benchDir, "node_modules", pkg, "package.json"), "utf8")) as {
        version: string;
      }
    ).version;
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    memoryGiB: totalmem() / 2 ** 30,
    kernel: release(),
    node: process.version,
    h2load: execFileSync("h2load", ["--version"], { encoding: "utf8" }).trim(),
    packages: Object.fromEntries(
      ["@grpc/grpc-js", "@connectrpc/connect-node", "@bufbuild/protobuf"].map((p) => [
        p,
        version(p),
      ]),
    ),
  };
}

/** Which commit a checkout is at, and whether its code has uncommitted changes. */
function describeCheckout(root: string): string {
  try {
    const git = (...args: string[]) =>
      execFileSync("git", ["-C", root, ...args], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      }).trim();
    const changed = git("status", "--porcelain", "--", "packages", "gen")
      .split("\n")
      .filter(Boolean);
    return (
      `, built from commit ${git("rev-parse", "--short", "HEAD")}` +
      (changed.length === 0
        ? ""
        : ` with ${changed.length} uncommitted changes in packages/ and gen/`)
    );
  } catch {
    return " (not a git checkout)";
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      "no-profile": { type: "boolean", default: false },
      "server-root": { type: "string", default: repoRoot },
      "server-note": { type: "string" },
      out: { type: "string", default: join(benchDir, "results") },
      keep: { type: "boolean", default: false },
    },
  });
  const resultsDir = values.out;
  const plan = plans[values.quick ? "quick" : "full"];
  preflight();
  // The harness (sampling, bookkeeping) stays off the servers' core, with the load generators.
  pinThisProcess(loadCpu);
  const serverRoot = values["server-root"];
  const { main: keelMain, warning } = checkBuilt(serverRoot);
  const notes: string[] = [
    `Our server: \`${keelMain}\`${values["server-note"] ?? describeCheckout(serverRoot)}.`,
  ];
  if (warning !== undefined) {
    process.stderr.write(`warning: ${warning}\n`);
    notes.push(`Warning at the time of the run: ${warning}.`);
  }
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const workDir = await mkdtemp(join(tmpdir(), "keel-bench-"));
  log(`work directory: ${workDir}`);
  const started = Date.now();
  try {
    const keel = await prepareKeel({
      main: keelMain,
      dataDir: join(workDir, "data"),
      logFile: join(workDir, "setup-keel.log"),
      updates: plan.streamMessages,
    });
    const getUserBody = join(workDir, "get-user.bin");
    await writeFile(getUserBody, grpcFrame(GetUserRequestSchema, { userId: keel.userId }));
    const streamBody = grpcFrame(StreamUserActivitiesRequestSchema, { userId: keel.userId });

    const only = values.only?.split(",");
    const results: ScenarioResult[] = [];
    for (const scenario of scenarios(plan)) {
      if (only !== undefined && !only.includes(scenario.id)) continue;
      log(`[${scenario.id}] ${scenario.title}`);
      try {
        results.push(
          await runScenario(scenario, { plan, workDir, keel, getUserBody, streamBody, log }),
        );
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        log(`[${scenario.id}] failed: ${message}`);
        results.push({ scenario, variants: [], skipped: `failed: ${message}` });
      }
    }

    let profile: ProfileRun | undefined;
    if (!values["no-profile"]) {
      log("[profile] our server under --cpu-prof, 1000 in flight");
      profile = await profileKeel({ keel, plan, workDir, getUserBody });
    }

    const command = `./dev node --conditions=source bench/src/run.ts${values.quick ? " --quick" : ""}`;
    const machine = machineInfo();
    await mkdir(resultsDir, { recursive: true });
    notes.push(`The whole run took ${Math.round((Date.now() - started) / 1000)} s.`);
    await writeFile(
      join(resultsDir, "README.md"),
      renderReport({ plan, machine, results, command, notes }),
    );
    await writeFile(
      join(resultsDir, "chart.svg"),
      renderChart(
        results,
        `${machine.date}, ${plan.mode} run, ${machine.cpus} CPUs, Node ${machine.node}; server on 1 core unless noted`,
      ),
    );
    await writeFile(
      join(resultsDir, "results.json"),
      `${JSON.stringify(
        {
          machine,
          plan,
          results: results.map((r) => ({
            id: r.scenario.id,
            title: r.scenario.title,
            unit: r.scenario.unit,
            skipped: r.skipped,
            variants: r.variants.map((v) => ({ ...v, variant: v.variant.label })),
          })),
        },
        null,
        2,
      )}\n`,
    );
    if (profile !== undefined) {
      await writeFile(
        join(resultsDir, "profile.md"),
        renderProfile(profile, formatSummary(profile.summary)),
      );
    }
    log(
      `wrote ${resultsDir}/README.md, chart.svg, results.json${profile === undefined ? "" : ", profile.md"}`,
    );
  } finally {
    if (values.keep) log(`kept ${workDir}`);
    else await rm(workDir, { recursive: true, force: true });
  }
}

stopAllOnSignals("bench");
main().catch((err: unknown) => {
  killAll();
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
