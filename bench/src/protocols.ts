/**
 * What each protocol costs on one server: unary GetUser through the whole chain over gRPC,
 * gRPC-Web, Connect (proto, JSON, JSON over HTTP/1.1, GET) and REST (HTTP/1.1 and HTTP/2), each
 * row measured on keel's engine and, for comparison, on connect-node's adapter (the same build
 * with KEEL_ENGINE=connect), in alternating rounds on one pinned core, h2load on the other. Rows
 * whose load generator used more than 80% of its core are marked: the generator, not the
 * server, may have set their pace. Prints a markdown table: CPU per call, its ratio to gRPC's
 * on the same server, calls per second, p99, the generator's CPU.
 *
 *   ./dev node --conditions=source bench/src/protocols.ts [--root .] [--rounds 3] [--seconds 6]
 *     [--warm-up 5] [--connections 50] [--streams 20] [--only grpc,connect-json,...] [--keep]
 *
 * ROOT is a checkout whose server is built (`./dev build`).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { GetUserRequestSchema } from "@keel/gen/user/v1/user_pb";
import { checkBuilt, prepareKeel } from "./keel-setup.ts";
import { killAll, pinThisProcess, preflight, stopAllOnSignals } from "./launch.ts";
import { measure, type Sample, settle } from "./measure.ts";
import { loadCpu, loadOptions, plans, serverCpu } from "./plan.ts";
import { getUser, type LoadContext, type Scenario, unary } from "./scenarios.ts";
import { median } from "./stats.ts";
import { type RunningTarget, startKeel } from "./targets.ts";

/** One way of calling GetUser. */
export interface ProtocolRow {
  id: string;
  title: string;
  http1: boolean;
  /** The path (with its query), given the user's id. */
  path: (userId: string) => string;
  contentType: string | null;
  /** The body, given the request message's bytes and JSON; none: a GET. */
  body?: (proto: Uint8Array, json: string) => Uint8Array;
}

const grpcFramed = (proto: Uint8Array) => {
  const out = Buffer.alloc(5 + proto.length);
  out.writeUInt32BE(proto.length, 1);
  out.set(proto, 5);
  return out;
};
const method = `/${getUser}`;

/** Every row, in the order of the report. */
export const protocolRows: ProtocolRow[] = [
  {
    id: "grpc",
    title: "gRPC",
    http1: false,
    path: () => method,
    contentType: "application/grpc",
    body: grpcFramed,
  },
  {
    id: "grpc-web",
    title: "gRPC-Web (binary)",
    http1: false,
    path: () => method,
    contentType: "application/grpc-web+proto",
    body: grpcFramed,
  },
  {
    id: "connect-proto",
    title: "Connect, application/proto",
    http1: false,
    path: () => method,
    contentType: "application/proto",
    body: (proto) => proto,
  },
  {
    id: "connect-json",
    title: "Connect, application/json",
    http1: false,
    path: () => method,
    contentType: "application/json",
    body: (_, json) => Buffer.from(json),
  },
  {
    id: "connect-json-h1",
    title: "Connect JSON over HTTP/1.1",
    http1: true,
    path: () => method,
    contentType: "application/json",
    body: (_, json) => Buffer.from(json),
  },
  {
    id: "connect-get",
    title: "Connect GET",
    http1: false,
    path: (userId) =>
      `${method}?connect=v1&encoding=json&message=${encodeURIComponent(JSON.stringify({ userId }))}`,
    contentType: null,
  },
  {
    id: "rest-h1",
    title: "REST GET /api/v1/users/{id}, HTTP/1.1",
    http1: true,
    path: (userId) => `/api/v1/users/${userId}`,
    contentType: null,
  },
  {
    id: "rest-h2",
    title: "REST GET /api/v1/users/{id}, HTTP/2",
    http1: false,
    path: (userId) => `/api/v1/users/${userId}`,
    contentType: null,
  },
];

interface Server {
  label: string;
  context: LoadContext;
  /** Each row's request body file, by row id. */
  bodies: Map<string, string>;
  userId: string;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      root: { type: "string", default: "." },
      rounds: { type: "string", default: "3" },
      seconds: { type: "string", default: "6" },
      "warm-up": { type: "string", default: "5" },
      connections: { type: "string", default: "50" },
      streams: { type: "string", default: "20" },
      only: { type: "string" },
      keep: { type: "boolean", default: false },
    },
  });
  const { rounds, seconds, warmUp, connections, streams } = loadOptions(values);
  const only = values.only?.split(",");
  const unknown = only?.find((id) => !protocolRows.some((row) => row.id === id));
  if (unknown !== undefined) {
    throw new Error(
      `--only: no row "${unknown}"; rows: ${protocolRows.map((r) => r.id).join(", ")}`,
    );
  }
  const rows = protocolRows.filter((row) => only === undefined || only.includes(row.id));
  preflight();
  pinThisProcess(loadCpu);
  const plan = { ...plans.full, unarySeconds: seconds, warmupSeconds: warmUp };
  const workDir = await mkdtemp(join(tmpdir(), "keel-protocols-"));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(`work directory: ${workDir}`);
  const { main, warning } = checkBuilt(resolve(values.root));
  if (warning !== undefined) log(`warning: ${warning}`);

  const servers: Server[] = [];
  const samples = new Map<string, Sample[]>();
  let finished = false;
  try {
    for (const [label, engine] of [
      ["engine", "keel"],
      ["connect", "connect"],
    ] as const) {
      const setup = await prepareKeel({
        main,
        dataDir: join(workDir, label),
        logFile: join(workDir, `${label}-setup.log`),
        updates: 10,
      });
      const target: RunningTarget = await startKeel({
        main,
        env: { ...setup.env, KEEL_ENGINE: engine },
        cpu: serverCpu,
        logFile: join(workDir, `${label}.log`),
        nodeFlags: [],
      });
      const request = create(GetUserRequestSchema, { userId: setup.userId });
      const proto = toBinary(GetUserRequestSchema, request);
      const json = toJsonString(GetUserRequestSchema, request);
      const bodies = new Map<string, string>();
      for (const row of rows) {
        if (row.body === undefined) continue;
        const file = join(workDir, `${label}-${row.id}.bin`);
        await writeFile(file, row.body(proto, json));
        bodies.set(row.id, file);
      }
      servers.push({
        label,
        context: {
          target,
          variant: { label, kind: "keel", serverCpu, loadCpu },
          plan,
          workDir,
          authorization: setup.authorization,
          getUserBody: "",
          streamBody: Buffer.alloc(0),
          warmup: false,
        },
        bodies,
        userId: String(setup.userId),
      });
    }
    const scenarioOf = (row: ProtocolRow, server: Server): Scenario => ({
      id: row.id,
      title: row.title,
      description: row.http1
        ? `h2load --h1, ${connections} connections`
        : `h2load, ${connections} connections × ${streams} streams`,
      unit: "req/s",
      variants: [],
      verifiedMethod: getUser,
      load: unary(connections, row.http1 ? 1 : streams, {
        path: row.path(server.userId),
        bodyFile: server.bodies.get(row.id),
        contentType: row.contentType,
        http1: row.http1,
      }),
    });
    for (const server of servers) {
      log(`warming up ${server.label} for ${warmUp} s per row`);
      for (const row of rows) {
        await scenarioOf(row, server).load({ ...server.context, warmup: true });
      }
    }
    for (let round = 0; round < rounds; round++) {
      for (const row of rows) {
        for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
          await settle(server.context.target);
          const { sample, firstError } = await measure(scenarioOf(row, server), server.context);
          const key = `${row.id}\t${server.label}`;
          samples.set(key, [...(samples.get(key) ?? []), sample]);
          log(
            `round ${round + 1}/${rounds} ${row.id} on ${server.label}: ` +
              `${sample.rate.toFixed(0)} req/s, ${sample.cpuMicrosPer.toFixed(0)} µs CPU/req, ` +
              `p99 ${sample.p99Ms.toFixed(1)} ms, client CPU ` +
              `${sample.generatorCpuShare === undefined ? "?" : Math.round(sample.generatorCpuShare * 100)}%, ` +
              `${sample.errors} errors${firstError === undefined ? "" : ` (${firstError})`}`,
          );
        }
      }
    }
    finished = true;
  } finally {
    await Promise.all(servers.map((server) => server.context.target.stop()));
    if (finished && !values.keep) await rm(workDir, { recursive: true, force: true });
    else log(`kept ${workDir}`);
  }
  process.stdout.write(
    `Unary GetUser by protocol, full chain; HTTP/2 rows ${connections} connections × ${streams} ` +
      `streams, HTTP/1.1 rows ${connections} connections; ${rounds} rounds of ${seconds} s; ` +
      `server on CPU ${serverCpu}, h2load on CPU ${loadCpu}\n\n${renderProtocols(rows, samples)}\n`,
  );
}

/** The report: per row, each server's median CPU per call and its ratio to gRPC's. */
export function renderProtocols(
  rows: readonly ProtocolRow[],
  samples: ReadonlyMap<string, readonly Sample[]>,
): string {
  const of = (row: string, server: string, pick: (s: Sample) => number) => {
    const rounds = samples.get(`${row}\t${server}`) ?? [];
    return rounds.length === 0 ? Number.NaN : median(rounds.map(pick));
  };
  const cpu = (row: string, server: string) => of(row, server, (s) => s.cpuMicrosPer);
  const lines = [
    "| protocol | engine CPU µs/call | × gRPC | engine req/s | engine p99 ms | connect-node CPU µs/call | × gRPC | client CPU |",
    "| --- | --: | --: | --: | --: | --: | --: | --: |",
  ];
  for (const row of rows) {
    const client = Math.max(
      of(row.id, "engine", (s) => s.generatorCpuShare ?? 0),
      of(row.id, "connect", (s) => s.generatorCpuShare ?? 0),
    );
    const flag = client > 0.8 ? " (generator-bound)" : "";
    lines.push(
      `| ${row.title}${flag} | ${cpu(row.id, "engine").toFixed(0)} | ` +
        `${(cpu(row.id, "engine") / cpu("grpc", "engine")).toFixed(2)} | ` +
        `${of(row.id, "engine", (s) => s.rate).toFixed(0)} | ` +
        `${of(row.id, "engine", (s) => s.p99Ms).toFixed(1)} | ` +
        `${cpu(row.id, "connect").toFixed(0)} | ` +
        `${(cpu(row.id, "connect") / cpu("grpc", "connect")).toFixed(2)} | ` +
        `${Math.round(client * 100)}% |`,
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  stopAllOnSignals("protocols");
  main().catch((err: unknown) => {
    killAll();
    process.stderr.write(`protocols: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
