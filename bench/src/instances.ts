/**
 * Instances sharing PostgreSQL: unary GetUser (h2load, the load: 50 connections × 20
 * streams, one user) on one instance pinned to CPU 1 with h2load on CPU 0, against two instances
 * on one schema, each with its own h2load of half the connections, nothing pinned (two servers,
 * two load generators and PostgreSQL share the machine's 2 cores). Alternating rounds; calls/s
 * summed over the instances, CPU per call of the servers and of PostgreSQL's backends, and how
 * much of the 2 cores each used.
 *
 *   ./dev node --conditions=source bench/src/instances.ts [--server-root DIR] [--rounds 3]
 *     [--seconds 5] [--warm-up 5] [--database-url postgres://postgres@127.0.0.1:5432/test]
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { runH2load } from "./h2load.ts";
import { checkBuilt } from "./keel-setup.ts";
import { killAll, pinThisProcess, preflight, stopAllOnSignals } from "./launch.ts";
import { settle } from "./measure.ts";
import { loadCpu, serverCpu } from "./plan.ts";
import { cpuMicros, processTree } from "./proc-stats.ts";
import { median } from "./stats.ts";
import { startStoreTarget } from "./store-target.ts";
import { type RunningTarget, startKeel } from "./targets.ts";

const { values } = parseArgs({
  options: {
    "server-root": { type: "string", default: resolve(import.meta.dirname, "../..") },
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "5" },
    "warm-up": { type: "string", default: "5" },
    "database-url": { type: "string", default: "postgres://postgres@127.0.0.1:5432/test" },
  },
});

interface Round {
  rate: number;
  serverCpuPer: number;
  pgCpuPer: number;
  /** CPU time used over the load, in cores: servers, PostgreSQL backends, h2load excluded. */
  serverCores: number;
  pgCores: number;
  errors: number;
}

async function main(): Promise<void> {
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  preflight();
  const { main, warning } = checkBuilt(values["server-root"]);
  if (warning !== undefined) console.warn(warning);
  const workDir = await mkdtemp(join(tmpdir(), "keel-instances-"));
  const a = await startStoreTarget({
    label: "a",
    store: "postgres",
    main,
    workDir,
    cpu: undefined,
    databaseUrl: values["database-url"],
    seed: false,
  });
  let b: RunningTarget | undefined;
  const results = { one: [] as Round[], two: [] as Round[] };
  try {
    b = await startKeel({ main, env: a.env, cpu: undefined, logFile: join(workDir, "b.log") });
    const second = b;
    // Pinning is per run: one instance gets CPU 1 and its h2load CPU 0; two get both cores.
    const pin = (pid: number, cpus: string) =>
      execFileSync("taskset", ["-a", "-p", "-c", cpus, String(pid)], { stdio: "ignore" });
    const load = async (targets: RunningTarget[], pinned: boolean, warmup: boolean) => {
      for (const t of targets) pin(t.pid, pinned ? String(serverCpu) : "0,1");
      for (const t of targets) await settle(t);
      const pids = targets.flatMap((t) => processTree(t.pid));
      const [cpu0, pg0, t0] = [cpuMicros(pids), await a.backends?.cpuMicros(), performance.now()];
      const runs = await Promise.all(
        targets.map((t, i) =>
          runH2load({
            url: `http://127.0.0.1:${t.port}/user.v1.UserService/GetUser`,
            bodyFile: a.bodies.getUser,
            headers: { authorization: a.authorization },
            connections: 50 / targets.length,
            streamsPerConnection: 20,
            durationSeconds: warmup ? Number(values["warm-up"]) : seconds,
            cpu: pinned ? loadCpu : undefined,
            logFile: join(workDir, `h2load-${i}.tsv`),
            timeoutSeconds: 120,
          }),
        ),
      );
      const elapsed = (performance.now() - t0) * 1000;
      const [cpu, pg] = [
        cpuMicros(pids) - cpu0,
        ((await a.backends?.cpuMicros()) ?? 0) - (pg0 ?? 0),
      ];
      const calls = runs.reduce((sum, r) => sum + r.succeeded, 0);
      return {
        rate: runs.reduce((sum, r) => sum + r.requestsPerSecond, 0),
        serverCpuPer: cpu / calls,
        pgCpuPer: pg / calls,
        serverCores: cpu / elapsed,
        pgCores: pg / elapsed,
        errors: runs.reduce((sum, r) => sum + r.errors, 0),
      };
    };
    await load([a.target], true, true);
    await load([a.target, second], false, true);
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? (["one", "two"] as const) : (["two", "one"] as const);
      for (const kind of order) {
        const r = await load(
          kind === "one" ? [a.target] : [a.target, second],
          kind === "one",
          false,
        );
        results[kind].push(r);
        process.stderr.write(
          `round ${round + 1}/${rounds} ${kind}: ${r.rate.toFixed(0)} calls/s, ` +
            `${r.serverCpuPer.toFixed(0)} µs server CPU/call, ${r.pgCpuPer.toFixed(0)} µs PostgreSQL CPU/call, ` +
            `servers ${r.serverCores.toFixed(2)} cores, PostgreSQL ${r.pgCores.toFixed(2)} cores\n`,
        );
      }
    }
  } finally {
    await b?.stop();
    await a.close();
    await rm(workDir, { recursive: true, force: true });
  }
  const of = (list: Round[], pick: (r: Round) => number) => median(list.map(pick));
  const row = (label: string, list: Round[]) =>
    `| ${label} | ${of(list, (r) => r.rate).toFixed(0)} | ${of(list, (r) => r.serverCpuPer).toFixed(0)} | ` +
    `${of(list, (r) => r.pgCpuPer).toFixed(0)} | ${of(list, (r) => r.serverCores).toFixed(2)} | ` +
    `${of(list, (r) => r.pgCores).toFixed(2)} | ${list.reduce((s, r) => s + r.errors, 0)} |`;
  const ratio = of(results.two, (r) => r.rate) / of(results.one, (r) => r.rate);
  process.stdout.write(
    [
      `GetUser on PostgreSQL, one instance against two, ${rounds} rounds of ${seconds} s (${main})`,
      "",
      "| instances | calls/s | server CPU µs/call | PostgreSQL CPU µs/call | servers' cores | PostgreSQL's cores | errors |",
      "| --- | --: | --: | --: | --: | --: | --: |",
      row("one, CPU 1 (h2load on CPU 0)", results.one),
      row("two, unpinned (2 × h2load)", results.two),
      "",
      `two / one: ${ratio.toFixed(2)}×`,
      "",
    ].join("\n"),
  );
}

if (import.meta.main) {
  stopAllOnSignals("instances");
  pinThisProcess(loadCpu);
  main().catch((err: unknown) => {
    killAll();
    process.stderr.write(
      `instances: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  });
}
