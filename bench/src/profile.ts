import { mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { runH2load } from "./h2load.ts";
import type { KeelSetup } from "./keel-setup.ts";
import { waitForQuiet } from "./measure.ts";
import { loadCpu, type Plan, serverCpu } from "./plan.ts";
import { type CpuProfile, type ProfileSummary, summarizeProfile } from "./profile-summary.ts";
import { startKeel } from "./targets.ts";

export interface ProfileRun {
  summary: ProfileSummary;
  /** Requests per second while profiled (the profiler itself costs some). */
  requestsPerSecond: number;
  seconds: number;
  file: string;
}

/** The monotonic clock in microseconds: the clock of a .cpuprofile's timestamps. */
function monotonicMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * Runs our server with `--cpu-prof`, pinned like the benchmarks, under unary GetUser with 1000
 * calls in flight (50 connections × 20 streams), after a warm-up; the summary counts only the
 * samples taken during the measured load.
 */
export async function profileKeel(options: {
  keel: KeelSetup;
  plan: Plan;
  workDir: string;
  getUserBody: string;
}): Promise<ProfileRun> {
  const dir = join(options.workDir, "cpu-profile");
  await mkdir(dir, { recursive: true });
  const target = await startKeel({
    main: options.keel.main,
    env: options.keel.env,
    nodeFlags: ["--cpu-prof", `--cpu-prof-dir=${dir}`],
    cpu: serverCpu,
    logFile: join(options.workDir, "profile-keel.log"),
  });
  const load = (seconds: number) =>
    runH2load({
      url: `http://127.0.0.1:${target.port}/user.v1.UserService/GetUser`,
      bodyFile: options.getUserBody,
      headers: { authorization: options.keel.authorization },
      connections: 50,
      streamsPerConnection: 20,
      durationSeconds: seconds,
      cpu: loadCpu,
      logFile: join(options.workDir, "h2load-requests.tsv"),
      timeoutSeconds: 120,
    });
  let result: Awaited<ReturnType<typeof load>>;
  let window: { fromMicros: number; toMicros: number };
  try {
    await load(options.plan.warmupSeconds);
    await waitForQuiet([target], options.plan.quietWaitSeconds);
    const fromMicros = monotonicMicros();
    result = await load(options.plan.profileSeconds);
    window = { fromMicros, toMicros: monotonicMicros() };
  } finally {
    // The profile is written when the process exits: our server exits 0 on SIGTERM.
    await target.stop();
  }
  const [name] = (await readdir(dir)).filter((f) => f.endsWith(".cpuprofile"));
  if (name === undefined) throw new Error(`no .cpuprofile was written into ${dir}`);
  const file = join(dir, name);
  const profile = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
  return {
    summary: summarizeProfile(profile, window),
    requestsPerSecond: result.requestsPerSecond,
    seconds: options.plan.profileSeconds,
    file,
  };
}
