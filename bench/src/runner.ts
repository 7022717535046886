import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { UserService } from "@keel/gen/user/v1/user_pb";
import type { KeelSetup } from "./keel-setup.ts";
import { measure, medianSample, type Sample, settle, waitForQuiet } from "./measure.ts";
import type { Plan } from "./plan.ts";
import type { LoadContext, Scenario, Variant } from "./scenarios.ts";
import { type RunningTarget, StartError, startKeel, startPeer } from "./targets.ts";

/** The bare peers' programs, by kind. */
const peerScripts = {
  engine: "engine-peer.ts",
  "grpc-js": "grpc-js-peer.ts",
  "connect-node": "connect-peer.ts",
} as const;

export interface VariantResult {
  variant: Variant;
  samples: Sample[];
  /** Each figure's median over the samples. */
  median: Sample;
  firstError?: string;
}

export interface ScenarioResult {
  scenario: Scenario;
  variants: VariantResult[];
  /** Why the scenario was not measured. */
  skipped?: string;
}

/** What every scenario shares. */
export interface RunnerContext {
  plan: Plan;
  workDir: string;
  keel: KeelSetup;
  getUserBody: string;
  streamBody: Buffer;
  /** Progress lines. */
  log: (line: string) => void;
}

/**
 * Starts every target of the scenario, warms each up, then measures them in turns (A B C A B C …)
 * `plan.repetitions` times, and stops them. A target that cannot start skips the scenario, saying
 * why (for example a server that does not know KEEL_WORKERS yet).
 */
export async function runScenario(scenario: Scenario, ctx: RunnerContext): Promise<ScenarioResult> {
  const started: RunningTarget[] = [];
  try {
    for (const variant of scenario.variants) {
      try {
        started.push(await start(variant, scenario, ctx));
      } catch (err) {
        if (!(err instanceof StartError)) throw err;
        ctx.log(`[${scenario.id}] skipped: ${variant.label}: ${err.message}`);
        return {
          scenario,
          variants: [],
          skipped: `${variant.label} did not start: ${err.message}`,
        };
      }
    }
    const loadContext = (i: number, warmup: boolean): LoadContext => ({
      target: started[i] as RunningTarget,
      variant: scenario.variants[i] as Variant,
      plan: ctx.plan,
      workDir: ctx.workDir,
      authorization: ctx.keel.authorization,
      getUserBody: ctx.getUserBody,
      streamBody: ctx.streamBody,
      warmup,
    });
    for (let i = 0; i < started.length; i++) await scenario.load(loadContext(i, true));

    const samples: Sample[][] = scenario.variants.map(() => []);
    const firstErrors: (string | undefined)[] = [];
    for (let rep = 1; rep <= ctx.plan.repetitions; rep++) {
      for (let i = 0; i < started.length; i++) {
        await settle(started[i] as RunningTarget);
        const othersBusy = await waitForQuiet(started, ctx.plan.quietWaitSeconds);
        if (othersBusy !== undefined) {
          ctx.log(
            `[${scenario.id}] other processes keep ${Math.round(othersBusy * 100)}% of a CPU ` +
              "busy; measuring anyway",
          );
        }
        const { sample, firstError } = await measure(scenario, loadContext(i, false));
        samples[i]?.push(sample);
        firstErrors[i] ??= firstError;
        ctx.log(
          `[${scenario.id}] ${rep}/${ctx.plan.repetitions} ${scenario.variants[i]?.label}: ` +
            `${Math.round(sample.rate)} ${scenario.unit}, p50 ${sample.p50Ms.toFixed(2)} ms, ` +
            `p99 ${sample.p99Ms.toFixed(2)} ms, ${Math.round(sample.cpuMicrosPer)} µs CPU, ` +
            `${sample.peakRssMiB.toFixed(0)} MiB, ${sample.errors} errors` +
            (sample.connectionsHeld === undefined ? "" : `, ${sample.connectionsHeld} fds held`) +
            (sample.generatorCpuShare === undefined
              ? ""
              : `, client CPU ${Math.round(sample.generatorCpuShare * 100)}%`) +
            (sample.foreignCpuShare === undefined
              ? ""
              : `, others on its core ${Math.round(sample.foreignCpuShare * 100)}%`),
        );
      }
    }
    return {
      scenario,
      variants: scenario.variants.map((variant, i) => ({
        variant,
        samples: samples[i] ?? [],
        median: medianSample(samples[i] ?? []),
        ...(firstErrors[i] === undefined ? {} : { firstError: firstErrors[i] }),
      })),
    };
  } finally {
    await Promise.all(started.map((target) => target.stop()));
  }
}

async function start(
  variant: Variant,
  scenario: Scenario,
  ctx: RunnerContext,
): Promise<RunningTarget> {
  const logFile = join(ctx.workDir, `${scenario.id}-${variant.kind}${variant.workers ?? ""}.log`);
  const target =
    variant.kind === "keel"
      ? await startKeel({
          main: ctx.keel.main,
          env: {
            ...ctx.keel.env,
            ...(variant.workers === undefined ? {} : { KEEL_WORKERS: String(variant.workers) }),
          },
          cpu: variant.serverCpu,
          logFile,
        })
      : await startPeer(peerScripts[variant.kind], { cpu: variant.serverCpu, logFile });
  // One real call through a real client before any load: the target answers what we ask.
  const users = createClient(
    UserService,
    createGrpcTransport({ baseUrl: `http://127.0.0.1:${target.port}` }),
  );
  const { user } = await users.getUser(
    { userId: ctx.keel.userId },
    { headers: { authorization: ctx.keel.authorization }, timeoutMs: 10_000 },
  );
  if (user?.username !== "bench") {
    await target.stop();
    throw new Error(`${variant.label} answered GetUser with ${JSON.stringify(user?.username)}`);
  }
  return target;
}
