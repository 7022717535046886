/**
 * Load shedding at 3× overload: does shedding keep the calls a server accepts fast, and how much
 * useful work gets done, against the same server without shedding?
 *
 *   ./dev build
 *   ./dev node --conditions=source bench/src/overload.ts [--seconds=10] [--overload=3]
 *     [--rounds=2] [--timeout-ms=1000] [--server-root=DIR]
 *
 * Two servers of one build run on CPU 1 (one with KEEL_LOAD_SHEDDING=true, one without), this
 * process on CPU 0. First the capacity C of unary GetUser is measured (closed loop, 64 calls in
 * flight, the server without shedding: OK calls a second), then each server is measured in
 * alternating rounds: unloaded (an open loop at 0.2 C) and overloaded (an open loop at
 * `--overload` × C, calls started every millisecond whatever the answers, each with a
 * `--timeout-ms` deadline, as callers have). Goodput: OK calls a second; p99: of the OK calls.
 */

import { mkdtempSync, rmSync } from "node:fs";
import * as http2 from "node:http2";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { GetUserRequestSchema } from "@keel/gen/user/v1/user_pb";
import { grpcFrame } from "./grpc-frame.ts";
import { checkBuilt, prepareKeel } from "./keel-setup.ts";
import { killAll, pinThisProcess, stopAllOnSignals } from "./launch.ts";
import { type OpenLoopResult, runOpenLoop } from "./open-loop.ts";
import { median, percentile } from "./stats.ts";
import { type RunningTarget, startKeel } from "./targets.ts";

const { values } = parseArgs({
  options: {
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
const path = "/user.v1.UserService/GetUser";

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
  const body = grpcFrame(GetUserRequestSchema, { userId: setup.userId });
  shedding = await startKeel({
    main,
    env: { ...setup.env, KEEL_LOAD_SHEDDING: "true" },
    cpu: 1,
    logFile: join(work, "shedding.log"),
  });
  plain = await startKeel({ main, env: setup.env, cpu: 1, logFile: join(work, "plain.log") });
  const servers = { shedding, "no shedding": plain };
  const url = (t: RunningTarget) => `http://127.0.0.1:${t.port}`;
  const c = await capacity(url(plain), body, headers, 5000);
  console.log(`capacity of GetUser on one core (closed loop, 64 in flight): ${c.toFixed(0)}/s`);
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
  const results: Record<string, { unloaded: Figures[]; overloaded: Figures[] }> = {
    shedding: { unloaded: [], overloaded: [] },
    "no shedding": { unloaded: [], overloaded: [] },
  };
  for (let round = 0; round < rounds; round++) {
    const order =
      round % 2 === 0
        ? (["shedding", "no shedding"] as const)
        : (["no shedding", "shedding"] as const);
    for (const name of order) {
      const target = servers[name];
      const unloaded = await load(target, 0.2 * c);
      const overloaded = await load(target, overload * c);
      results[name]?.unloaded.push(unloaded);
      results[name]?.overloaded.push(overloaded);
      const f = (x: Figures) =>
        `goodput ${x.goodput.toFixed(0)}/s, p50 ${x.p50.toFixed(2)} ms, p99 ${x.p99.toFixed(2)} ms, refused ${(x.refused * 100).toFixed(1)}%, no answer in time ${(x.timedOut * 100).toFixed(1)}%`;
      console.log(`round ${round + 1} ${name}: unloaded ${f(unloaded)}`);
      console.log(`round ${round + 1} ${name}: ${overload}× overload ${f(overloaded)}`);
    }
  }
  console.log(
    `\nGetUser, capacity ${c.toFixed(0)}/s, open loop at ${overload}× (${(overload * c).toFixed(0)}/s) for ${seconds} s, deadline ${timeoutMs} ms; medians of ${rounds} rounds\n`,
  );
  console.log(
    "| server | unloaded p99 (ms) | overloaded p99 of OK calls (ms) | p99 ratio | goodput (/s) | goodput / capacity | refused | no answer in time |",
  );
  console.log("| --- | --: | --: | --: | --: | --: | --: | --: |");
  for (const [name, r] of Object.entries(results)) {
    const m = (list: Figures[], key: keyof Figures) => median(list.map((x) => x[key]));
    const unloadedP99 = m(r.unloaded, "p99");
    const p99 = m(r.overloaded, "p99");
    const goodput = m(r.overloaded, "goodput");
    console.log(
      `| ${name} | ${unloadedP99.toFixed(2)} | ${Number.isNaN(p99) ? "-" : p99.toFixed(2)} | ${(p99 / unloadedP99).toFixed(2)}× | ${goodput.toFixed(0)} | ${((goodput / c) * 100).toFixed(0)}% | ${(m(r.overloaded, "refused") * 100).toFixed(1)}% | ${(m(r.overloaded, "timedOut") * 100).toFixed(1)}% |`,
    );
  }
} finally {
  await shedding?.stop();
  await plain?.stop();
  killAll();
  rmSync(work, { recursive: true, force: true });
}
