/**
 * What each protocol costs on one server, on keel's engine and, for comparison, on connect-node's
 * adapter (the same build with KEEL_ENGINE=connect), in alternating rounds on one pinned core,
 * the load generator on the other. Three tables, from one run:
 *
 * - Unary GetUser through the whole chain over gRPC, gRPC-Web, Connect (proto, JSON, JSON over
 *   HTTP/1.1, GET) and REST (HTTP/1.1 and HTTP/2), by h2load: each HTTP/2 row at every `--shapes`
 *   shape (connections × streams; default 50 × 20 and 50 × 1), each HTTP/1.1 row once at the
 *   first shape's connections, one call in flight on each. CPU per call, its ratio to gRPC's at
 *   the same shape on the same server, calls/s, p99.
 * - The user service's streaming RPCs (server: StreamUserActivities, client: BatchUpdateUsers,
 *   bidi: SyncUserStatus) over gRPC and Connect (application/connect+proto), by
 *   bench/src/stream-load.ts, 4 connections × 8 calls of `--messages` messages each: CPU per
 *   message and per call, the ratio to the same RPC over gRPC, messages/s, p99 of a call.
 * - Unary GetUser over gRPC and Connect JSON in an open loop (bench/src/open-loop.ts, from this
 *   process: calls started every millisecond whatever the answers; h2load --rps fires all its
 *   connections in step, and the last call of each burst of 50 waits for the 49 others) at half the
 *   capacity each server showed for that protocol in the closed-loop rounds (its best shape),
 *   over the largest shape's connections; p50/p99 against the 10 ms target, and errors.
 *
 * Every row gives its load generator's CPU share; above 80% it is marked generator-bound: the
 * generator, not the server, may have set its pace. The machine may be shared: each load waits
 * (at most 10 s) for other processes to leave the CPUs, and a row whose server's core was more
 * than 10% busy with others is marked disturbed.
 *
 *   ./dev node --conditions=source bench/src/protocols.ts [--root .] [--rounds 3] [--seconds 6]
 *     [--warm-up 5] [--shapes 50x20,50x1] [--messages 100] [--only grpc,server-stream-grpc,...]
 *     [--keep]
 *
 * `--only` takes row ids: GetUser's (grpc, grpc-web, connect-proto, connect-json,
 * connect-json-h1, connect-get, rest-h1, rest-h2), streaming ones (server-stream-grpc,
 * client-stream-connect, …) and open-loop ones (open-loop-grpc, open-loop-connect-json, which
 * need their closed-loop row). ROOT is a checkout whose server is built (`./dev build`).
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { GetUserRequestSchema } from "@keel/gen/user/v1/user_pb";
import { checkBuilt, prepareKeel } from "./keel-setup.ts";
import { killAll, pinThisProcess, preflight, stopAllOnSignals } from "./launch.ts";
import { measure, medianSample, type Sample, settle, waitForQuiet } from "./measure.ts";
import {
  type LoadShape,
  loadCpu,
  parseShapes,
  plans,
  serverCpu,
  shapeName,
  wholeNumber,
} from "./plan.ts";
import {
  type PerServer,
  renderOpenLoopTable,
  renderStreamTable,
  renderUnaryTable,
  type ServerLabel,
  serverLabels,
} from "./protocol-report.ts";
import {
  openLoopRate,
  type ProtocolRow,
  protocolRows,
  type SelectedRows,
  selectRows,
} from "./protocol-rows.ts";
import {
  getUser,
  type LoadContext,
  openLoop,
  type Scenario,
  streamLoad,
  unary,
} from "./scenarios.ts";
import { type RunningTarget, startKeel } from "./targets.ts";

/** The issue's target for unary calls at half capacity. */
const targetP99Ms = 10;
/** Streaming calls in flight: connections × calls each, as run.ts's streaming scenario. */
const streamShape: LoadShape = { connections: 4, streams: 8 };

interface Server {
  label: ServerLabel;
  context: LoadContext;
  /** Each GetUser row's request body file, by row id. */
  bodies: Map<string, string>;
  userId: bigint;
}

/** One load measured on each server in every round. */
interface Measurement {
  /** The row's id, and its shape when it has several. */
  key: string;
  /** Warmed up before the first round (one shape of each row is enough). */
  warm: boolean;
  scenario: (server: Server) => Scenario | Promise<Scenario>;
}

/** What a run measures, from its options. */
interface RunShape {
  rounds: number;
  seconds: number;
  /** HTTP/2 shapes of the GetUser rows. */
  shapes: readonly LoadShape[];
  /** Messages per streaming call. */
  messages: number;
}

/** Each measurement's samples, one per round, by key and server. */
class Samples {
  private readonly byKey = new Map<string, Record<ServerLabel, Sample[]>>();

  add(key: string, server: ServerLabel, sample: Sample): void {
    const entry = this.byKey.get(key) ?? { engine: [], connect: [] };
    entry[server].push(sample);
    this.byKey.set(key, entry);
  }

  of(key: string): PerServer {
    return this.byKey.get(key) ?? { engine: [], connect: [] };
  }
}

/** HTTP/1.1 carries one call at a time per connection: the first shape's connections, one each. */
function http1Shape(run: RunShape): LoadShape {
  return { connections: (run.shapes[0] as LoadShape).connections, streams: 1 };
}

/** The shape with the most calls in flight: the open loop spreads its calls over its connections. */
function openLoopShape(run: RunShape): LoadShape {
  return run.shapes.reduce((a, b) =>
    b.connections * b.streams > a.connections * a.streams ? b : a,
  );
}

function shapesOf(row: ProtocolRow, run: RunShape): readonly LoadShape[] {
  return row.http1 ? [http1Shape(run)] : run.shapes;
}

function unaryKey(row: ProtocolRow, shape: LoadShape): string {
  return `${row.id} ${shapeName(shape)}`;
}

/** A server's best closed-loop calls/s for a GetUser row, over its shapes. */
function capacity(samples: Samples, run: RunShape, row: ProtocolRow, server: ServerLabel) {
  return Math.max(
    ...shapesOf(row, run).map((shape) => {
      const rounds = samples.of(unaryKey(row, shape))[server];
      return rounds.length === 0 ? 0 : medianSample(rounds).rate;
    }),
  );
}

/** GetUser by h2load over one row's protocol, at `shape`. */
function unaryScenario(row: ProtocolRow, shape: LoadShape) {
  return (server: Server): Scenario => ({
    id: row.id,
    title: row.title,
    description: `h2load${row.http1 ? " --h1" : ""}, ${shapeName(shape)}`,
    unit: "req/s",
    variants: [],
    verifiedMethod: getUser,
    load: unary(shape.connections, shape.streams, {
      path: row.path(String(server.userId)),
      bodyFile: server.bodies.get(row.id),
      contentType: row.contentType,
      http1: row.http1,
    }),
  });
}

/** GetUser over one row's protocol (a POST) at `rate` calls/s, an open loop from this process. */
function openLoopScenario(row: ProtocolRow, connections: number, rate: number) {
  return async (server: Server): Promise<Scenario> => {
    const bodyFile = server.bodies.get(row.id);
    if (bodyFile === undefined || row.contentType === null) {
      throw new Error(`the open loop posts a body: ${row.id} is a GET`);
    }
    const body = await readFile(bodyFile);
    return {
      id: row.id,
      title: row.title,
      description: `open-loop.ts, ${rate} calls/s over ${connections} connections`,
      unit: "req/s",
      variants: [],
      verifiedMethod: getUser,
      load: openLoop(
        { path: row.path(String(server.userId)), body, contentType: row.contentType },
        connections,
        rate,
      ),
    };
  };
}

/** The closed-loop measurements: each GetUser row at each of its shapes, each streaming row. */
function closedLoop(selected: SelectedRows, run: RunShape): Measurement[] {
  return [
    ...selected.unary.flatMap((row) =>
      shapesOf(row, run).map((shape, i) => ({
        key: unaryKey(row, shape),
        warm: i === 0,
        scenario: unaryScenario(row, shape),
      })),
    ),
    ...selected.stream.map(({ id, rpc, protocol }) => ({
      key: id,
      warm: true,
      scenario: (server: Server): Scenario => ({
        id,
        title: `${rpc.title} over ${protocol.title}`,
        description: `stream-load.ts, ${shapeName(streamShape)}`,
        unit: "msg/s",
        variants: [],
        load: streamLoad(
          { ...rpc.call(server.userId, run.messages), protocol: protocol.id },
          streamShape.connections,
          streamShape.streams,
        ),
      }),
    })),
  ];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      root: { type: "string", default: "." },
      rounds: { type: "string", default: "3" },
      seconds: { type: "string", default: "6" },
      "warm-up": { type: "string", default: "5" },
      shapes: { type: "string", default: "50x20,50x1" },
      messages: { type: "string", default: "100" },
      only: { type: "string" },
      keep: { type: "boolean", default: false },
    },
  });
  const run: RunShape = {
    rounds: wholeNumber("rounds", values.rounds),
    seconds: wholeNumber("seconds", values.seconds),
    shapes: parseShapes(values.shapes),
    messages: wholeNumber("messages", values.messages),
  };
  const warmUp = wholeNumber("warm-up", values["warm-up"]);
  const selected = selectRows(values.only?.split(","));
  preflight();
  pinThisProcess(loadCpu);
  const plan = {
    ...plans.full,
    unarySeconds: run.seconds,
    streamSeconds: run.seconds,
    streamMessages: run.messages,
    warmupSeconds: warmUp,
  };
  const workDir = await mkdtemp(join(tmpdir(), "keel-protocols-"));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(`work directory: ${workDir}`);
  const { main, warning } = checkBuilt(resolve(values.root));
  if (warning !== undefined) log(`warning: ${warning}`);

  const servers: Server[] = [];
  const samples = new Samples();
  // Rounds alternate the servers' order.
  const runRounds = async (measurements: readonly Measurement[]) => {
    for (let round = 0; round < run.rounds; round++) {
      for (const m of measurements) {
        for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
          const scenario = await m.scenario(server);
          await settle(server.context.target);
          const others = await waitForQuiet(
            servers.map((s) => s.context.target),
            plan.quietWaitSeconds,
          );
          if (others !== undefined) {
            log(
              `other processes still use ${Math.round(others * 100)}% of a CPU; measuring anyway`,
            );
          }
          const { sample, firstError } = await measure(scenario, server.context);
          samples.add(m.key, server.label, sample);
          const unit = scenario.unit === "msg/s" ? "message" : "call";
          log(
            `round ${round + 1}/${run.rounds} ${m.key} on ${server.label}: ` +
              `${sample.rate.toFixed(0)} ${unit}s/s, ${sample.cpuMicrosPer.toFixed(1)} µs CPU/${unit}, ` +
              `p99 ${sample.p99Ms.toFixed(1)} ms, client CPU ` +
              `${sample.generatorCpuShare === undefined ? "?" : Math.round(sample.generatorCpuShare * 100)}%, ` +
              `${sample.errors} errors${firstError === undefined ? "" : ` (${firstError})`}`,
          );
        }
      }
    }
  };

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
        // StreamUserActivities replays them: one more than a call reads. An even number leaves
        // the tags as created, which BatchUpdateUsers' rows then set again.
        updates: run.messages + (run.messages % 2),
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
      for (const row of selected.unary) {
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
        userId: setup.userId,
      });
    }
    const measurements = closedLoop(selected, run);
    for (const server of servers) {
      log(`warming up ${server.label} for ${warmUp} s per row`);
      for (const m of measurements.filter((m) => m.warm)) {
        await (await m.scenario(server)).load({ ...server.context, warmup: true });
      }
    }
    await runRounds(measurements);
    // The open loop's rates come from the closed-loop rounds: each server at half its capacity.
    const rates = new Map(
      selected.openLoop.map(({ id, row }) => [
        id,
        {
          engine: openLoopRate(capacity(samples, run, row, "engine")),
          connect: openLoopRate(capacity(samples, run, row, "connect")),
        },
      ]),
    );
    const { connections } = openLoopShape(run);
    await runRounds(
      selected.openLoop.map(({ id, row }) => ({
        key: id,
        warm: false,
        scenario: (server: Server) =>
          openLoopScenario(row, connections, rates.get(id)?.[server.label] ?? 1)(server),
      })),
    );
    finished = true;
    const offered = (id: string, server: ServerLabel) => rates.get(id)?.[server] ?? Number.NaN;
    process.stdout.write(`${report(selected, run, samples, offered)}\n`);
  } finally {
    await Promise.all(servers.map((server) => server.context.target.stop()));
    if (finished && !values.keep) await rm(workDir, { recursive: true, force: true });
    else log(`kept ${workDir}`);
  }
}

/** The tables, each under a line saying how it was measured. */
function report(
  selected: SelectedRows,
  run: RunShape,
  samples: Samples,
  offered: (openLoopId: string, server: ServerLabel) => number,
): string {
  const grpc = protocolRows[0] as ProtocolRow;
  const sections = [
    `${run.rounds} rounds of ${run.seconds} s per row and server, alternating; server on CPU ` +
      `${serverCpu}, load generator on CPU ${loadCpu}. engine: keel's engine; connect-node: the ` +
      `same build with KEEL_ENGINE=connect. Marked rows: generator-bound, the load generator ` +
      `used more than 80% of its core; disturbed, other processes more than 10% of the server's.`,
  ];
  if (selected.unary.length > 0) {
    sections.push(
      `Unary GetUser by protocol, full chain, closed loop (h2load). Shape: connections × calls ` +
        `in flight on each (HTTP/2 rows at ${run.shapes.map(shapeName).join(" and ")}, ` +
        `HTTP/1.1 rows at ${shapeName(http1Shape(run))}); × gRPC: against gRPC at the same shape.`,
      renderUnaryTable(
        selected.unary.flatMap((row) =>
          shapesOf(row, run).map((shape) => ({
            title: row.title,
            shape: `${shapeName(shape)}${row.http1 ? " (HTTP/1.1)" : ""}`,
            samples: samples.of(unaryKey(row, shape)),
            reference: samples.of(unaryKey(grpc, shape)),
          })),
        ),
      ),
    );
  }
  if (selected.stream.length > 0) {
    sections.push(
      `Streaming, closed loop (bench/src/stream-load.ts), ${shapeName(streamShape)} calls of ` +
        `${run.messages} messages each (server streaming: cancelled after them; client and ` +
        `bidi: ended by the server); × gRPC: CPU per message against the same RPC over gRPC.`,
      renderStreamTable(
        selected.stream.map(({ id, rpc, protocol }) => ({
          rpc: rpc.title,
          protocol: protocol.title,
          messagesPerCall: run.messages,
          samples: samples.of(id),
          reference: samples.of(`${rpc.id}-grpc`),
        })),
      ),
    );
  }
  if (selected.openLoop.length > 0) {
    sections.push(
      `Unary GetUser, open loop (bench/src/open-loop.ts): calls started every millisecond at ` +
        `half each server's closed-loop calls/s (its best shape), whatever the answers, over ` +
        `${openLoopShape(run).connections} connections, each with a 1 s deadline; errors: calls ` +
        `not OK by then. The target: p99 ≤ ${targetP99Ms} ms.`,
      renderOpenLoopTable(
        selected.openLoop.flatMap(({ id, row }) =>
          serverLabels.map((server) => ({
            title: row.title,
            server,
            capacity: capacity(samples, run, row, server),
            offered: offered(id, server),
            samples: samples.of(id)[server],
          })),
        ),
        targetP99Ms,
      ),
    );
  }
  return sections.join("\n\n");
}

if (import.meta.main) {
  stopAllOnSignals("protocols");
  main().catch((err: unknown) => {
    killAll();
    process.stderr.write(`protocols: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
