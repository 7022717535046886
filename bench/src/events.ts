/**
 * Live events across instances: status changes made on instance A (SyncUserStatus streams, one per
 * user, `--rate` changes a second offered in all; a stream's changes are applied one after
 * another, so what the server does not keep up with waits, and delivered/s says what it made) reach StreamUserActivities subscribers on instance B,
 * both on one PostgreSQL schema (LISTEN/NOTIFY between them); and, as the reference, the same on
 * one instance on SQLite (A and B are the same process). Delivery latency is from the change's
 * timestamp (taken by A as it stores it) to its arrival at the subscriber, on this machine's one
 * clock.
 *
 *   ./dev node --conditions=source bench/src/events.ts [--rate 1000] [--users 10] [--seconds 10]
 *     [--warm-up 3] [--rounds 2] [--database-url postgres://postgres@127.0.0.1:5432/test]
 *
 * Nothing is pinned: two servers, PostgreSQL and this process share the 2 cores.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { UserStatus } from "@keel/gen/user/v1/user_pb";
import { checkBuilt } from "./keel-setup.ts";
import { killAll, stopAllOnSignals } from "./launch.ts";
import { cpuMicros, processTree } from "./proc-stats.ts";
import { type BenchClients, benchClients } from "./rpc-loads.ts";
import { median, percentile } from "./stats.ts";
import { type StoreKind, type StoreTarget, startStoreTarget } from "./store-target.ts";
import { type RunningTarget, startKeel } from "./targets.ts";

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "1000" },
    users: { type: "string", default: "10" },
    seconds: { type: "string", default: "10" },
    "warm-up": { type: "string", default: "3" },
    rounds: { type: "string", default: "2" },
    "database-url": { type: "string", default: "postgres://postgres@127.0.0.1:5432/test" },
    keep: { type: "boolean", default: false },
  },
});

/** One measured period of one setup. */
interface Delivery {
  sent: number;
  delivered: number;
  latenciesMs: Float64Array;
  /** CPU time per event delivered: instance A, instance B (0 when the same), PostgreSQL's backends. */
  cpuMicrosPer: { a: number; b: number; pg: number };
}

/** Two instances (or one) on one store, with the users whose status changes. */
interface Setup {
  label: string;
  a: StoreTarget;
  b: RunningTarget;
  clientsA: BenchClients;
  clientsB: BenchClients;
  userIds: bigint[];
  /** Changes made so far per user: even leaves it active, so the next change suspends it. */
  changes: Map<bigint, number>;
  close(): Promise<void>;
}

async function startSetup(store: StoreKind, main: string, workDir: string): Promise<Setup> {
  const a = await startStoreTarget({
    label: `${store}-a`,
    store,
    main,
    workDir,
    cpu: undefined,
    databaseUrl: values["database-url"],
    seed: false,
  });
  try {
    const b =
      store === "sqlite"
        ? a.target
        : await startKeel({ main, env: a.env, cpu: undefined, logFile: join(workDir, "b.log") });
    const clientsB = store === "sqlite" ? a.clients : benchClients(b.port, a.authorization);
    const userIds: bigint[] = [];
    for (let i = 0; i < Number(values.users); i++) {
      const name = `follow${i}-${store}`;
      const { user } = await a.clients.users.createUser({
        username: name,
        email: `${name}@example.com`,
        password: "bench-password-1",
      });
      userIds.push(user?.userId as bigint);
    }
    return {
      label: store === "sqlite" ? "SQLite, one instance" : "PostgreSQL, A → B",
      a,
      b,
      clientsA: a.clients,
      clientsB,
      userIds,
      changes: new Map(userIds.map((id) => [id, 0])),
      async close() {
        if (b !== a.target) await b.stop();
        await a.close();
      },
    };
  } catch (err) {
    await a.close();
    throw err;
  }
}

/** Changes statuses on A at `rate` a second for `seconds`, timing their arrival on B. */
async function deliver(setup: Setup, rate: number, seconds: number): Promise<Delivery> {
  const subscribers = new AbortController();
  const senders = new AbortController();
  const latencies: number[] = [];
  let counting = false;
  let sent = 0;
  // Subscribe first, and wait until each subscription has replayed its history.
  const ready: Promise<void>[] = [];
  const reading = setup.userIds.map((userId) => {
    let caughtUp: () => void = () => {};
    ready.push(new Promise((r) => (caughtUp = r)));
    return (async () => {
      const since = { seconds: BigInt(Math.floor(Date.now() / 1000) + 1), nanos: 0 };
      const stream = setup.clientsB.users.streamUserActivities(
        { userId, since },
        { headers: setup.clientsB.headers, signal: subscribers.signal },
      );
      setTimeout(caughtUp, 500);
      try {
        for await (const activity of stream) {
          if (activity.action !== "user.status_changed" || activity.timestamp === undefined)
            continue;
          if (counting) latencies.push(Date.now() - timestampMs(activity.timestamp));
        }
      } catch (err) {
        if (!subscribers.signal.aborted) throw err;
      }
    })();
  });
  await Promise.all(ready);
  const interval = (1000 * setup.userIds.length) / rate;
  const writing = setup.userIds.map(async (userId, i) => {
    const start = performance.now() + (interval * i) / setup.userIds.length;
    async function* changes() {
      for (let n = 0; !senders.signal.aborted; n++) {
        const due = start + n * interval;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (senders.signal.aborted) return;
        if (counting) sent++;
        const made = setup.changes.get(userId) ?? 0;
        setup.changes.set(userId, made + 1);
        yield { userId, status: made % 2 === 0 ? UserStatus.SUSPENDED : UserStatus.ACTIVE };
      }
    }
    const responses = setup.clientsA.users.syncUserStatus(changes(), {
      headers: setup.clientsA.headers,
    });
    for await (const _ of responses) {
      // The sender follows no one: nothing comes back but the end.
    }
  });
  const pids = {
    a: processTree(setup.a.target.pid),
    b: setup.b === setup.a.target ? [] : processTree(setup.b.pid),
  };
  await new Promise((r) => setTimeout(r, Number(values["warm-up"]) * 1000));
  const before = {
    a: cpuMicros(pids.a),
    b: cpuMicros(pids.b),
    pg: (await setup.a.backends?.cpuMicros()) ?? 0,
  };
  counting = true;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  counting = false;
  const after = {
    a: cpuMicros(pids.a),
    b: cpuMicros(pids.b),
    pg: (await setup.a.backends?.cpuMicros()) ?? 0,
  };
  senders.abort();
  await Promise.all(writing);
  // What was sent in the period and is still on its way gets a moment to arrive.
  await new Promise((r) => setTimeout(r, 1000));
  subscribers.abort();
  await Promise.all(reading);
  // Per change made: the sender's stream is read one change at a time, so what is offered
  // beyond what the server keeps up with waits in its buffers and is never made in the period.
  const per = (value: number) => value / Math.max(1, latencies.length);
  return {
    sent,
    delivered: latencies.length,
    latenciesMs: Float64Array.from(latencies).sort(),
    cpuMicrosPer: {
      a: per(after.a - before.a),
      b: per(after.b - before.b),
      pg: per(after.pg - before.pg),
    },
  };
}

async function main(): Promise<void> {
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const { main, warning } = checkBuilt(resolve(import.meta.dirname, "../.."));
  if (warning !== undefined) console.warn(warning);
  const workDir = await mkdtemp(join(tmpdir(), "keel-events-"));
  const setups: Setup[] = [];
  const results = new Map<Setup, Delivery[]>();
  let finished = false;
  try {
    setups.push(await startSetup("sqlite", main, workDir));
    setups.push(await startSetup("postgres", main, workDir));
    for (let round = 0; round < rounds; round++) {
      for (const setup of round % 2 === 0 ? setups : [...setups].reverse()) {
        const d = await deliver(setup, rate, seconds);
        results.set(setup, [...(results.get(setup) ?? []), d]);
        process.stderr.write(
          `round ${round + 1}/${rounds} ${setup.label}: ${d.sent} sent, ${d.delivered} delivered, ` +
            `p50 ${percentile(d.latenciesMs, 50).toFixed(1)} ms, p99 ${percentile(d.latenciesMs, 99).toFixed(1)} ms\n`,
        );
      }
    }
    finished = true;
  } finally {
    for (const setup of setups) await setup.close().catch(() => {});
    if (finished && !values.keep) await rm(workDir, { recursive: true, force: true });
    else process.stderr.write(`kept ${workDir}\n`);
  }
  const lines = [
    `Live events, ${rate} status changes/s over ${values.users} users, ${rounds} rounds of ${seconds} s ` +
      "(nothing pinned; the machine's 2 cores are shared)",
    "",
    "| setup | offered/s | delivered/s | p50 ms | p99 ms | max ms | CPU µs/event: A | B | PostgreSQL |",
    "| --- | --: | --: | --: | --: | --: | --: | --: | --: |",
  ];
  for (const [setup, list] of results) {
    const of = (pick: (d: Delivery) => number) => median(list.map(pick));
    lines.push(
      `| ${setup.label} | ${of((d) => d.sent / seconds).toFixed(0)} | ` +
        `${of((d) => d.delivered / seconds).toFixed(0)} | ` +
        `${of((d) => percentile(d.latenciesMs, 50)).toFixed(1)} | ` +
        `${of((d) => percentile(d.latenciesMs, 99)).toFixed(1)} | ` +
        `${of((d) => d.latenciesMs.at(-1) ?? Number.NaN).toFixed(1)} | ` +
        `${of((d) => d.cpuMicrosPer.a).toFixed(0)} | ${of((d) => d.cpuMicrosPer.b).toFixed(0)} | ` +
        `${of((d) => d.cpuMicrosPer.pg).toFixed(0)} |`,
    );
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

if (import.meta.main) {
  stopAllOnSignals("events");
  main().catch((err: unknown) => {
    killAll();
    process.stderr.write(
      `events: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  });
}
