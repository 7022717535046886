/**
 * Our server on SQLite beside our server on PostgreSQL, in one run: unary reads (GetUser, GetOrder,
 * ListOrders of a page of 100) by h2load, and writes (CreateUser, CreateOrder, PayOrder) from a
 * closed loop in this process, each server pinned to the servers' CPU and measured in alternating
 * rounds. Per call: the server's CPU time, the CPU time of the PostgreSQL backends serving it,
 * statements sent to the database (`keel_store_queries_total`) and the share of calls that found
 * the connection pool exhausted.
 *
 *   ./dev node --conditions=source bench/src/stores.ts [--variant label=ROOT[:FLAGS]]...
 *     [--stores sqlite,postgres] [--only get-user,get-order,list-orders,create-user,create-order,pay-order]
 *     [--rounds 3] [--seconds 5] [--warm-up 5] [--connections 50] [--streams 20] [--writers 50]
 *     [--database-url postgres://postgres@127.0.0.1:5432/test] [--pool-size N] [--keep]
 *
 * A variant is a built checkout (`label=ROOT`, default `current=.`), optionally with node flags;
 * every variant runs on every store.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { describeVariants, parseVariant, type Variant } from "./compare.ts";
import { checkBuilt } from "./keel-setup.ts";
import { killAll, pinThisProcess, preflight, stopAllOnSignals } from "./launch.ts";
import { measure, type Sample, settle } from "./measure.ts";
import { loadCpu, plans, serverCpu } from "./plan.ts";
import { writeLoads } from "./rpc-loads.ts";
import type { LoadContext, LoadOutcome, Scenario } from "./scenarios.ts";
import { unary } from "./scenarios.ts";
import { median } from "./stats.ts";
import { renderStoreTable, type StoreSample } from "./store-report.ts";
import {
  counterValue,
  pageSize,
  type StoreKind,
  type StoreTarget,
  seeded,
  startStoreTarget,
} from "./store-target.ts";

interface StoreScenario {
  id: string;
  method: string;
  title: string;
  load(target: StoreTarget): (ctx: LoadContext) => Promise<LoadOutcome>;
}

const scenarioIds = [
  "get-user",
  "get-order",
  "get-user-one-id",
  "get-order-one-id",
  "list-orders",
  "create-user",
  "create-order",
  "pay-order",
] as const;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      variant: { type: "string", multiple: true, default: ["current=."] },
      stores: { type: "string", default: "sqlite,postgres" },
      only: { type: "string", default: scenarioIds.join(",") },
      rounds: { type: "string", default: "3" },
      seconds: { type: "string", default: "5" },
      "warm-up": { type: "string", default: "5" },
      connections: { type: "string", default: "50" },
      streams: { type: "string", default: "20" },
      writers: { type: "string", default: "50" },
      "database-url": { type: "string", default: "postgres://postgres@127.0.0.1:5432/test" },
      "pool-size": { type: "string" },
      keep: { type: "boolean", default: false },
    },
  });
  const number = (name: keyof typeof values) => {
    const value = Number(values[name]);
    if (!Number.isInteger(value) || value < 1) {
      throw new Error(`--${name} must be a whole number ≥ 1`);
    }
    return value;
  };
  const variants: Variant[] = values.variant.map(parseVariant);
  const stores = values.stores.split(",").map((s) => s.trim());
  for (const store of stores) {
    if (store !== "sqlite" && store !== "postgres") {
      throw new Error(`--stores: "${store}" is not a store; use sqlite and/or postgres`);
    }
  }
  const only = values.only.split(",").map((s) => s.trim());
  for (const id of only) {
    if (!(scenarioIds as readonly string[]).includes(id)) {
      throw new Error(`--only: "${id}" is not a scenario; choose from ${scenarioIds.join(", ")}`);
    }
  }
  const [rounds, seconds, warmUp] = [number("rounds"), number("seconds"), number("warm-up")];
  const [connections, streams, writers] = [
    number("connections"),
    number("streams"),
    number("writers"),
  ];
  const poolSize = values["pool-size"] === undefined ? undefined : number("pool-size");
  preflight();
  pinThisProcess(loadCpu);
  const plan = { ...plans.full, unarySeconds: seconds, warmupSeconds: warmUp };
  const workDir = await mkdtemp(join(tmpdir(), "keel-stores-"));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(`work directory: ${workDir}`);

  const writes = new Map<StoreTarget, ReturnType<typeof writeLoads>>();
  const grpc = (method: string, bodyFile: string) => ({
    path: `/${method}`,
    bodyFile,
    contentType: "application/grpc",
    http1: false,
  });
  const reads = (method: string, body: (t: StoreTarget) => string) => (t: StoreTarget) =>
    unary(connections, streams, grpc(method, body(t)));
  const restGets = (paths: readonly string[]) => ({ path: paths, contentType: null, http1: false });
  const all: StoreScenario[] = [
    {
      id: "get-user",
      method: "user.v1.UserService/GetUser",
      title: `GetUser over REST (GET /api/v1/users/ID), a different user each call (of ${seeded})`,
      load: (t) =>
        unary(connections, streams, restGets(t.userIds.map((id) => `/api/v1/users/${id}`))),
    },
    {
      id: "get-order",
      method: "order.v1.OrderService/GetOrder",
      title: `GetOrder over REST (GET /api/v1/orders/ID), a different order each call (of ${seeded})`,
      load: (t) =>
        unary(connections, streams, restGets(t.orderIds.map((id) => `/api/v1/orders/${id}`))),
    },
    {
      id: "get-user-one-id",
      method: "user.v1.UserService/GetUser",
      title: "GetUser by h2load, every call the same user",
      load: reads("user.v1.UserService/GetUser", (t) => t.bodies.getUser),
    },
    {
      id: "get-order-one-id",
      method: "order.v1.OrderService/GetOrder",
      title: "GetOrder by h2load, every call the same order",
      load: reads("order.v1.OrderService/GetOrder", (t) => t.bodies.getOrder),
    },
    {
      id: "list-orders",
      method: "order.v1.OrderService/ListOrders",
      title: `ListOrders, a page of ${pageSize} orders, by h2load with 10 connections × 5 streams`,
      // A page costs milliseconds: a thousand in flight would wait seconds, and few end in time.
      load: (t) => unary(10, 5, grpc("order.v1.OrderService/ListOrders", t.bodies.listOrders)),
    },
    {
      id: "create-user",
      method: "user.v1.UserService/CreateUser",
      title: "CreateUser (scrypt at cost 10)",
      load: (t) => (ctx) => (writes.get(t) as ReturnType<typeof writeLoads>).createUser(ctx),
    },
    {
      id: "create-order",
      method: "order.v1.OrderService/CreateOrder",
      title: "CreateOrder (2 items)",
      load: (t) => (ctx) => (writes.get(t) as ReturnType<typeof writeLoads>).createOrder(ctx),
    },
    {
      id: "pay-order",
      method: "order.v1.OrderService/PayOrder",
      title: "PayOrder (of the orders CreateOrder made)",
      load: (t) => (ctx) => (writes.get(t) as ReturnType<typeof writeLoads>).payOrder(ctx),
    },
  ];
  const chosen = all.filter((s) => only.includes(s.id));

  const targets: StoreTarget[] = [];
  const samples = new Map<string, Map<StoreTarget, StoreSample[]>>();
  let finished = false;
  try {
    for (const variant of variants) {
      const { main, warning } = checkBuilt(resolve(variant.root));
      if (warning !== undefined) log(`warning (${variant.label}): ${warning}`);
      for (const store of stores as StoreKind[]) {
        const label = variants.length === 1 ? store : `${variant.label} ${store}`;
        log(`starting ${label}`);
        const target = await startStoreTarget({
          label,
          store,
          main,
          workDir,
          cpu: serverCpu,
          databaseUrl: values["database-url"],
          poolSize,
          nodeFlags: variant.flags,
        });
        targets.push(target);
        writes.set(
          target,
          writeLoads({ inFlight: writers, clients: target.clients, userId: target.userId }),
        );
      }
    }
    const contextOf = (t: StoreTarget, warmup: boolean): LoadContext => ({
      target: t.target,
      variant: { label: t.label, kind: "keel", serverCpu, loadCpu },
      plan,
      workDir,
      authorization: t.authorization,
      getUserBody: t.bodies.getUser,
      streamBody: Buffer.alloc(0),
      warmup,
    });
    for (const t of targets) {
      log(`warming up ${t.label}: ${chosen.map((s) => s.id).join(", ")}, ${warmUp} s each`);
      for (const s of chosen) await s.load(t)(contextOf(t, true));
    }
    for (let round = 0; round < rounds; round++) {
      for (const s of chosen) {
        const byTarget = samples.get(s.id) ?? new Map<StoreTarget, StoreSample[]>();
        samples.set(s.id, byTarget);
        for (const t of round % 2 === 0 ? targets : [...targets].reverse()) {
          await settle(t.target);
          const result = await measureOnStore(s, t, contextOf(t, false));
          const list = byTarget.get(t) ?? [];
          list.push(result);
          byTarget.set(t, list);
          log(
            `round ${round + 1}/${rounds} ${s.id} ${t.label}: ${result.sample.rate.toFixed(0)} calls/s, ` +
              `${result.sample.cpuMicrosPer.toFixed(0)} µs server CPU/call, ` +
              `${result.pgCpuMicrosPer.toFixed(0)} µs PostgreSQL CPU/call, ` +
              `${result.queriesPer.toFixed(2)} queries/call, p99 ${result.sample.p99Ms.toFixed(1)} ms, ` +
              `${result.sample.errors} errors${result.firstError === undefined ? "" : ` (${result.firstError})`}`,
          );
        }
      }
    }
    finished = true;
  } finally {
    for (const t of targets)
      await t.close().catch((err: unknown) => log(`closing ${t.label}: ${err}`));
    if (finished && !values.keep) await rm(workDir, { recursive: true, force: true });
    else log(`kept ${workDir}`);
  }
  const described = describeVariants(variants);
  const out = [
    `Stores: ${rounds} rounds of ${seconds} s, alternating; reads by h2load ${connections} connections × ` +
      `${streams} streams, writes by ${writers} callers in a closed loop; servers on CPU ${serverCpu}, ` +
      `load on CPU ${loadCpu}; ${described}`,
    "",
  ];
  for (const s of chosen) {
    const byTarget = samples.get(s.id);
    if (byTarget === undefined) continue;
    out.push(
      `### ${s.title}`,
      "",
      renderStoreTable(byTarget, (t) => t.label, median),
      "",
    );
  }
  process.stdout.write(`${out.join("\n")}\n`);
}

/** One measured load, with the PostgreSQL backends' CPU and the store counters around it. */
async function measureOnStore(
  s: StoreScenario,
  t: StoreTarget,
  ctx: LoadContext,
): Promise<StoreSample> {
  // A reading that fails (a server too busy to answer /metrics) leaves its figures unknown.
  const snapshot = async () => {
    const [pgCpu, metrics] = await Promise.all([
      t.backends?.cpuMicros().catch(() => Number.NaN) ?? Promise.resolve(0),
      t.target.metrics?.().catch(() => "") ?? Promise.resolve(""),
    ]);
    return {
      pgCpu,
      queries: counterValue(metrics, "keel_store_queries_total"),
      exhausted: counterValue(metrics, "keel_store_pool_exhausted_total"),
    };
  };
  const load = s.load(t);
  let before = snapshot();
  const scenario: Scenario = {
    id: s.id,
    title: s.title,
    description: "",
    unit: "req/s",
    variants: [],
    verifiedMethod: s.method,
    load: (inner) =>
      load({
        ...inner,
        // The counters start where the server's CPU time does: after a load's opening second.
        startMeasuring: () => {
          inner.startMeasuring?.();
          before = snapshot();
        },
      }),
  };
  const { sample, firstError }: { sample: Sample; firstError: string | undefined } = await measure(
    scenario,
    ctx,
  );
  const [start, end] = [await before, await snapshot()];
  const per = (value: number) => (sample.completed === 0 ? Number.NaN : value / sample.completed);
  return {
    sample,
    firstError,
    pgCpuMicrosPer: per(end.pgCpu - start.pgCpu),
    queriesPer: per(end.queries - start.queries),
    exhaustedShare: per(end.exhausted - start.exhausted),
  };
}

if (import.meta.main) {
  stopAllOnSignals("stores");
  process.once("uncaughtException", (err) => {
    killAll();
    process.stderr.write(`stores: ${err.stack ?? err.message}\n`);
    process.exit(1);
  });
  main().catch((err: unknown) => {
    killAll();
    process.stderr.write(
      `stores: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  });
}
