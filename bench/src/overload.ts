/**
 * Load shedding at 3× overload: does shedding keep the calls a server accepts fast, and how much
 * useful work gets done, against the same server without shedding?
 *
 *   ./dev build
 *   ./dev node --conditions=source bench/src/overload.ts [--method=list-users|get-user]
 *     [--page-size=250] [--seconds=10] [--overload=3] [--rounds=2] [--timeout-ms=1000]
 *     [--server-root=DIR]
 *
 * Two servers of one build run on CPU 1 (one with KEEL_LOAD_SHEDDING=true, one without), this
 * process on CPU 0. The call is ListUsers of `--page-size` users (about a millisecond of CPU per
 * hundred users: work worth protecting), or GetUser (a tenth of that: a refusal, which still
 * costs an HTTP/2 stream, is then a third of a call). First the capacity C is measured (closed
 * loop, 64 calls in flight, the server without shedding: OK calls a second), then each server is
 * measured in alternating rounds: unloaded (an open loop at 0.2 C) and overloaded (an open loop at
 * `--overload` × C, calls started every millisecond whatever the answers, each with a
 * `--timeout-ms` deadline, as callers have). Goodput: OK calls a second; p99: of the OK calls.
 */

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as http2 from "node:http2";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  GetUserRequestSchema,
  ListUsersRequestSchema,
  UserService,
} from "@keel/gen/user/v1/user_pb";
import { grpcFrame } from "./grpc-frame.ts";
import { checkBuilt, prepareKeel } from "./keel-setup.ts";
import { killAll, pinThisProcess, stopAllOnSignals } from "./launch.ts";
import { type OpenLoopResult, runOpenLoop } from "./open-loop.ts";
import { median, percentile } from "./stats.ts";
import { type RunningTarget, startKeel } from "./targets.ts";

const { values } = parseArgs({
  options: {
    method: { type: "string", default: "list-users" },
    "page-size": { type: "string", default: "250" },
    seconds: { type: "string", default: "10" },
    overload: { type: "string", default: "3" },
    rounds: { type: "string", default: "2" },
    "timeout-ms": { type: "string", default: "1000" },
    "server-root": { type: "string", default: resolve(import.meta.dirname, "../..") },
  },
});
const seconds = Number(values.seconds);
const overload = Number(values.overload);
const rounds = Number(values.rounds);
const timeoutMs = Number(values["timeout-ms"]);
const listUsers = values.method !== "get-user";
const pageSize = Number(values["page-size"]);
const method = listUsers ? `ListUsers (page of ${pageSize})` : "GetUser";
const path = listUsers ? "/user.v1.UserService/ListUsers" : "/user.v1.UserService/GetUser";

stopAllOnSignals("overload");
pinThisProcess(0);
const { main, warning } = checkBuilt(values["server-root"] as string);
if (warning !== undefined) console.warn(warning);
const work = mkdtempSync(join(tmpdir(), "keel-overload-"));

/** OK calls a second with `inFlight` calls kept in flight for `ms` (after a second's warm-up). */
async function capacity(baseUrl: string, body: Buffer, headers: object, ms: number) {
  const session = http2.connect(baseUrl);
  session.on("error", () => {});
  let ok = 0;
  let counting = false;
  let running = true;
  const one = (): Promise<void> =>
    new Promise((done) => {
      const stream = session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
        ...headers,
      });
      let status: unknown;
      stream.on("trailers", (h) => {
        status = h["grpc-status"];
      });
      stream.on("data", () => {});
      stream.on("error", () => {});
      stream.on("close", () => {
        if (counting && status === "0") ok++;
        done();
      });
      stream.end(body);
    });
  const worker = async () => {
    while (running) await one();
  };
  const workers = Array.from({ length: 64 }, worker);
  await new Promise((r) => setTimeout(r, 1000));
  counting = true;
  const t = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  counting = false;
  const elapsed = performance.now() - t;
  running = false;
  await Promise.all(workers);
  session.close();
  return (ok / elapsed) * 1000;
}

/**
 * Waits until the server answers a health check within 100 ms (at most 60 s): a server left with
 * a backlog by the last overload (the one without shedding works through calls whose callers
 * gave up long ago) must not slow the next measurement.
 */
async function settle(baseUrl: string) {
  const session = http2.connect(baseUrl);
  session.on("error", () => {});
  const deadline = performance.now() + 60_000;
  try {
    while (performance.now() < deadline) {
      const started = performance.now();
      await new Promise<void>((done) => {
        const stream = session.request({
          ":method": "POST",
          ":path": "/grpc.health.v1.Health/Check",
          "content-type": "application/grpc",
          te: "trailers",
        });
        stream.on("data", () => {});
        stream.on("error", () => done());
        stream.on("close", () => done());
        stream.end(Buffer.alloc(5));
      });
      if (performance.now() - started < 100) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    session.close();
  }
}

interface Figures {
  goodput: number;
  p50: number;
  p99: number;
  refused: number;
  timedOut: number;
  other: number;
}

function figures(r: OpenLoopResult): Figures {
  const ok = r.byStatus.get("0") ?? 0;
  const refused = r.byStatus.get("8") ?? 0;
  const timedOut = (r.byStatus.get("none") ?? 0) + (r.byStatus.get("4") ?? 0);
  return {
    goodput: ok / r.seconds,
    p50: percentile(r.okLatenciesMs, 50),
    p99: percentile(r.okLatenciesMs, 99),
    refused: refused / r.started,
    timedOut: timedOut / r.started,
    other: (r.started - ok - refused - timedOut) / r.started,
  };
}

let shedding: RunningTarget | undefined;
let plain: RunningTarget | undefined;
try {
  const setup = await prepareKeel({
    main,
    dataDir: join(work, "data"),
    logFile: join(work, "prepare.log"),
    updates: 0,
  });
  const headers = { authorization: setup.authorization };
  const body = listUsers
    ? grpcFrame(ListUsersRequestSchema, { pageSize })
    : grpcFrame(GetUserRequestSchema, { userId: setup.userId });
  // Sign-ups made cheap and unlimited, for the users the page lists.
  const env = {
    ...setup.env,
    KEEL_PASSWORD_COST: "10",
    KEEL_CREATE_USER_RATE_LIMIT_PER_MINUTE: "1000000",
    KEEL_CREATE_USER_RATE_LIMIT_BURST: "1000000",
    KEEL_PASSWORD_HASH_PER_CLIENT: "64",
  };
  shedding = await startKeel({
    main,
    env: { ...env, KEEL_LOAD_SHEDDING: "true" },
    cpu: 1,
    logFile: join(work, "shedding.log"),
  });
  plain = await startKeel({ main, env, cpu: 1, logFile: join(work, "plain.log") });
  if (listUsers) {
    const users = createClient(
      UserService,
      createGrpcTransport({ baseUrl: `http://127.0.0.1:${plain.port}` }),
    );
    for (let i = 1; i < pageSize; i += 16) {
      await Promise.all(
        Array.from({ length: Math.min(16, pageSize - i) }, (_, j) =>
          users.createUser({
            username: `user${i + j}`,
            email: `user${i + j}@example.com`,
            password: "bench-password-1",
            tags: ["bench", "listed"],
          }),
        ),
      );
    }
  }
  const servers = { shedding, "no shedding": plain };
  const url = (t: RunningTarget) => `http://127.0.0.1:${t.port}`;
  const load = (target: RunningTarget, rate: number) =>
    runOpenLoop({
      baseUrl: url(target),
      path,
      body,
      headers,
      rate,
      connections: 8,
      seconds,
      warmUpSeconds: 2,
      timeoutMs,
    }).then(figures);
  /** Per round and server: the p99 ratio (overloaded / unloaded) and goodput / capacity. */
  const results: Record<string, { p99Ratio: number[]; goodputShare: number[] }> = {
    shedding: { p99Ratio: [], goodputShare: [] },
    "no shedding": { p99Ratio: [], goodputShare: [] },
  };
  const f = (x: Figures) =>
    `goodput ${x.goodput.toFixed(0)}/s, p50 ${x.p50.toFixed(2)} ms, p99 ${x.p99.toFixed(2)} ms, refused ${(x.refused * 100).toFixed(1)}%, no answer in time ${(x.timedOut * 100).toFixed(1)}%`;
  for (let round = 0; round < rounds; round++) {
    // The machine is shared and its speed drifts: capacity is measured again each round, and
    // every figure of the round is compared with that round's.
    const loadavg = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
    const c = await capacity(url(plain), body, headers, 4000);
    console.log(
      `round ${round + 1}: capacity of ${method} on one core (closed loop, 64 in flight) ${c.toFixed(0)}/s; load average ${loadavg}`,
    );
    const order =
      round % 2 === 0
        ? (["shedding", "no shedding"] as const)
        : (["no shedding", "shedding"] as const);
    for (const name of order) {
      const target = servers[name];
      const unloaded = await load(target, 0.2 * c);
      const overloaded = await load(target, overload * c);
      await settle(url(target));
      const r = results[name];
      r?.p99Ratio.push(overloaded.p99 / unloaded.p99);
      r?.goodputShare.push(overloaded.goodput / c);
      console.log(`  ${name}, at 0.2×: ${f(unloaded)}`);
      console.log(`  ${name}, at ${overload}×: ${f(overloaded)}`);
    }
  }
  console.log(
    `\n${method}, open loop at ${overload}× the round's capacity for ${seconds} s, deadline ${timeoutMs} ms; medians over ${rounds} rounds of each round's ratios\n`,
  );
  console.log("| server | p99 of OK calls at 3× / p99 at 0.2× | goodput at 3× / capacity |");
  console.log("| --- | --: | --: |");
  for (const [name, r] of Object.entries(results)) {
    console.log(
      `| ${name} | ${median(r.p99Ratio).toFixed(2)}× | ${(median(r.goodputShare) * 100).toFixed(0)}% |`,
    );
  }
} finally {
  await shedding?.stop();
  await plain?.stop();
  killAll();
  rmSync(work, { recursive: true, force: true });
}
