/**
 * Can clients park memory in our server with request bodies? The outside finding: 250 streams on
 * one connection, each declaring a 4 MiB message and sending it slowly, took the server from 470
 * to 1,258 MiB of RSS. This opens such streams against our server (pinned to one core), without a
 * token and then with a valid one, and prints the server's RSS before, at the peak and after, with
 * what the streams were answered. With `--rest`, the streams are REST sign-ups instead
 * (`POST /api/v1/users`, public: JSON whose username never ends), which the engine reads within
 * the same budgets.
 *
 *   ./dev node --conditions=source bench/src/parked-bodies.ts [--streams 250] [--connections 1] [--rest]
 *     [--env KEEL_REQUEST_BUFFER_PER_PROCESS_BYTES=67108864 …]
 *
 * Needs `./dev build` first.
 */
import { mkdtemp, rm } from "node:fs/promises";
import * as http2 from "node:http2";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { checkBuilt, prepareKeel } from "./keel-setup.ts";
import { killAll, stopAllOnSignals } from "./launch.ts";
import { serverCpu } from "./plan.ts";
import { processTree, rssBytes } from "./proc-stats.ts";
import { startKeel } from "./targets.ts";

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);

/** What each parked stream asks for, and what it sends first. */
interface Parking {
  headers: http2.OutgoingHttpHeaders;
  first: Buffer;
  /** Sent every 100 ms after it. */
  chunk: Buffer;
}

function grpcParking(): Parking {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(4 * 1024 * 1024, 1);
  const chunk = Buffer.alloc(64 * 1024, 0x0a);
  return {
    headers: {
      ":method": "POST",
      ":path": "/user.v1.UserService/GetUser",
      "content-type": "application/grpc",
      te: "trailers",
    },
    first: Buffer.concat([prefix, chunk]),
    chunk,
  };
}

function restParking(): Parking {
  const chunk = Buffer.alloc(64 * 1024, 0x78);
  return {
    headers: { ":method": "POST", ":path": "/api/v1/users", "content-type": "application/json" },
    first: Buffer.concat([Buffer.from('{"username": "'), chunk]),
    chunk,
  };
}

/** Opens `streams` streams on each of `connections` connections, each sending its body slowly. */
async function park(
  url: string,
  parking: Parking,
  connections: number,
  streams: number,
  authorization: string | undefined,
  rss: () => number,
): Promise<{ answers: Map<string, number>; peakMiB: number }> {
  const answers = new Map<string, number>();
  let peak = rss();
  const sessions = Array.from({ length: connections }, () => http2.connect(url));
  const { chunk } = parking;
  const done: Promise<void>[] = [];
  for (const session of sessions) {
    session.on("error", () => {});
    for (let i = 0; i < streams; i++) {
      const stream = session.request({
        ...parking.headers,
        ...(authorization === undefined ? {} : { authorization }),
      });
      stream.on("error", () => {});
      done.push(
        new Promise<void>((resolve) => {
          let answered = false;
          const note = (what: string) => {
            if (answered) return;
            answered = true;
            answers.set(what, (answers.get(what) ?? 0) + 1);
            resolve();
          };
          stream.on("response", (h) =>
            note(
              h["content-type"]?.startsWith("application/grpc")
                ? `grpc-status ${String(h["grpc-status"] ?? "(in trailers)")}`
                : `HTTP ${String(h[":status"])}`,
            ),
          );
          stream.on("trailers", (t) => note(`grpc-status ${String(t["grpc-status"])}`));
          stream.on("close", () => note(`closed (${stream.rstCode})`));
        }),
      );
      // The prefix and a first 64 KiB, then 64 KiB more every 100 ms, as long as it is taken.
      stream.write(parking.first);
      const more = setInterval(() => {
        if (stream.closed || stream.destroyed) clearInterval(more);
        else stream.write(chunk);
      }, 100);
      stream.on("close", () => clearInterval(more));
    }
  }
  const sampler = setInterval(() => {
    peak = Math.max(peak, rss());
  }, 100);
  await Promise.race([Promise.all(done), new Promise((r) => setTimeout(r, 20_000))]);
  clearInterval(sampler);
  for (const session of sessions) session.destroy();
  return { answers, peakMiB: peak };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      streams: { type: "string", default: "250" },
      connections: { type: "string", default: "1" },
      root: { type: "string", default: "." },
      rest: { type: "boolean", default: false },
      /** NAME=VALUE for the server's environment, such as its request buffer settings. */
      env: { type: "string", multiple: true, default: [] },
    },
  });
  const streams = Number(values.streams);
  const connections = Number(values.connections);
  const workDir = await mkdtemp(join(tmpdir(), "keel-parked-"));
  const { main } = checkBuilt(resolve(values.root));
  const setup = await prepareKeel({
    main,
    dataDir: join(workDir, "data"),
    logFile: join(workDir, "setup.log"),
    updates: 0,
  });
  const extra = Object.fromEntries(
    values.env.map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]),
  );
  const target = await startKeel({
    main,
    env: { ...setup.env, ...extra },
    cpu: serverCpu,
    logFile: join(workDir, "server.log"),
  });
  const rss = () => Number(mib(rssBytes(processTree(target.pid))));
  const url = `http://127.0.0.1:${target.port}`;
  const lines = [
    values.rest
      ? `${connections} connection(s) × ${streams} streams, each a REST sign-up (POST /api/v1/users) whose JSON never ends, 64 KiB more every 100 ms`
      : `${connections} connection(s) × ${streams} streams, each declaring a 4 MiB GetUser request and sending 64 KiB every 100 ms`,
    "",
    "| caller | RSS before MiB | peak MiB | 5 s after MiB | answers |",
    "| --- | --: | --: | --: | --- |",
  ];
  try {
    for (const [label, authorization] of [
      ["no token", undefined],
      ["valid token", setup.authorization],
    ] as const) {
      const before = rss();
      const parking = values.rest ? restParking() : grpcParking();
      const { answers, peakMiB } = await park(
        url,
        parking,
        connections,
        streams,
        authorization,
        rss,
      );
      await new Promise((r) => setTimeout(r, 5000));
      lines.push(
        `| ${label} | ${before} | ${peakMiB} | ${rss()} | ${[...answers].map(([k, n]) => `${n}× ${k}`).join(", ")} |`,
      );
    }
  } finally {
    await target.stop();
    await rm(workDir, { recursive: true, force: true });
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

if (import.meta.main) {
  stopAllOnSignals("parked-bodies");
  main().catch((err: unknown) => {
    killAll();
    process.stderr.write(`parked-bodies: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
