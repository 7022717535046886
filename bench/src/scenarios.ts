import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type H2loadOptions, type H2loadResult, runH2load } from "./h2load.ts";
import { finish, launch } from "./launch.ts";
import { runOpenLoop } from "./open-loop.ts";
import { loadCpu, type Plan, serverCpu } from "./plan.ts";
import { type LatencySummary, summarizeLatencies } from "./stats.ts";
import type { StreamLoadOptions, StreamLoadResult } from "./stream-load.ts";
import type { RunningTarget } from "./targets.ts";

export type TargetKind = "keel" | "engine" | "grpc-js" | "connect-node";

/** One server of a scenario, how it runs and where its load runs. */
export interface Variant {
  label: string;
  kind: TargetKind;
  /** The CPU the server runs on; undefined: any. */
  serverCpu: number | undefined;
  /** The CPU the load generator runs on; undefined: any. */
  loadCpu: number | undefined;
  /** KEEL_WORKERS, for our server in cluster mode. */
  workers?: number;
}

/** What one load needs to know. */
export interface LoadContext {
  target: RunningTarget;
  variant: Variant;
  plan: Plan;
  workDir: string;
  authorization: string;
  /** File holding GetUser's request as one gRPC message. */
  getUserBody: string;
  /** The user GetUser asks for, for loads that put it in a URL (REST). */
  userId?: bigint;
  /** StreamUserActivities' request as one gRPC message. */
  streamBody: Buffer;
  /** An unmeasured warm-up: shorter, and in the scenario's usual shape. */
  warmup: boolean;
  /**
   * For a load that starts with a warm-up of its own (and reports only what follows it): called
   * when the measured part begins, so that CPU time is counted from there.
   */
  startMeasuring?: () => void;
  /** Headers every request carries besides its authorization (`grpc-timeout`, say). */
  headers?: Record<string, string>;
}

/** What one load reports; CPU and memory are measured around it by the runner. */
export interface LoadOutcome {
  /** Requests (or messages) per second. */
  rate: number;
  /** Requests (or messages) that succeeded. */
  completed: number;
  latencyMs: LatencySummary;
  errors: number;
  firstError?: string;
  /** The load generator's CPU time over the load's length, when it can tell. */
  generatorCpuShare?: number;
}

export interface Scenario {
  id: string;
  title: string;
  /** What is measured and how, for the report. */
  description: string;
  unit: "req/s" | "msg/s";
  variants: Variant[];
  /** Our server's calls of this method are checked in /metrics: every one must end OK. */
  verifiedMethod?: string;
  /** Also sample open descriptors, to report connections held. */
  countConnections?: boolean;
  load(ctx: LoadContext): Promise<LoadOutcome>;
}

/** The method every unary scenario calls. */
export const getUser = "user.v1.UserService/GetUser";

const keel: Variant = { label: "keel (full chain)", kind: "keel", serverCpu, loadCpu };
const grpcJs: Variant = { label: "grpc-js (bare)", kind: "grpc-js", serverCpu, loadCpu };
const connectNode: Variant = {
  label: "connect-node (bare)",
  kind: "connect-node",
  serverCpu,
  loadCpu,
};
/** @keel/engine with no interceptors answering the peers' fixed reply: the engine's own cost. */
const engineOnly: Variant = { label: "keel engine (bare)", kind: "engine", serverCpu, loadCpu };
const peers = [keel, engineOnly, grpcJs, connectNode];
/** Our server as cluster mode runs it on this machine: two workers, sharing the cores with the load. */
const keelCluster: Variant = {
  label: "keel, KEEL_WORKERS=2 (2 cores)",
  kind: "keel",
  serverCpu: undefined,
  loadCpu: undefined,
  workers: 2,
};

/**
 * The first second of a timed unary load, on its freshly opened connections, which h2load runs
 * but leaves out of its figures (--warm-up-time; `runH2load` leaves out the calls that started in
 * it and ended later, which h2load logs): every connection sends its first calls at the
 * same instant, and the order in which the server reads fifty new connections, not how it
 * shares its time among calls in flight, decides how long some of them wait. CPU time is counted
 * from its end too.
 */
const openingSeconds = 1;

/** A unary request other than GetUser over gRPC (see `unary`). */
export interface UnaryRequest {
  /** The path, with its query; or several, requested in turn (REST GETs of different ids). */
  path: string | readonly string[];
  /** The body; none: a GET. */
  bodyFile?: string | undefined;
  /** Default: `application/grpc` for a body, none for a GET; null: none. */
  contentType: string | null;
  http1: boolean;
}

/**
 * Unary GetUser by h2load (or `request`), `connections × streams` in flight, for the plan's
 * duration.
 */
export function unary(connections: number, streams: number, request?: UnaryRequest) {
  return (ctx: LoadContext): Promise<LoadOutcome> => {
    const origin = `http://127.0.0.1:${ctx.target.port}`;
    const path = request?.path ?? `/${getUser}`;
    return timedLoad(ctx, {
      url: typeof path === "string" ? `${origin}${path}` : path.map((p) => `${origin}${p}`),
      ...(request === undefined
        ? { bodyFile: ctx.getUserBody }
        : {
            ...(request.bodyFile === undefined ? {} : { bodyFile: request.bodyFile }),
            contentType: request.contentType,
            http1: request.http1,
          }),
      connections,
      streamsPerConnection: streams,
    });
  };
}

/**
 * GetUser over REST, `GET /api/v1/users/{id}` by h2load over HTTP/1.1 (`--h1`, one request at a
 * time per connection), `connections` in flight, for the plan's duration.
 */
export function restGet(connections: number) {
  return (ctx: LoadContext): Promise<LoadOutcome> => {
    if (ctx.userId === undefined) throw new Error("a REST load needs the user's id (userId)");
    return timedLoad(ctx, {
      url: `http://127.0.0.1:${ctx.target.port}/api/v1/users/${ctx.userId}`,
      http1: true,
      connections,
      streamsPerConnection: 1,
    });
  };
}

/** One h2load run of the plan's unary length (or its warm-up), authorized, its opening left out. */
async function timedLoad(
  ctx: LoadContext,
  load: Pick<
    H2loadOptions,
    "url" | "bodyFile" | "contentType" | "http1" | "connections" | "streamsPerConnection"
  >,
): Promise<LoadOutcome> {
  const result = await runH2load({
    ...load,
    headers: { ...ctx.headers, authorization: ctx.authorization },
    durationSeconds: ctx.warmup ? ctx.plan.warmupSeconds : ctx.plan.unarySeconds,
    ...(ctx.warmup ? {} : { warmUpSeconds: openingSeconds, onMeasuring: ctx.startMeasuring }),
    cpu: ctx.variant.loadCpu,
    logFile: join(ctx.workDir, "h2load-requests.tsv"),
    timeoutSeconds: 120,
  });
  return outcomeOf(result);
}

/** What an h2load run measured: its rate, latencies, errors, its CPU and why it was stopped. */
function outcomeOf(result: H2loadResult): LoadOutcome {
  return {
    rate: result.requestsPerSecond,
    completed: result.succeeded,
    latencyMs: result.latencyMs,
    errors: result.errors,
    ...(result.clientCpuShare === undefined ? {} : { generatorCpuShare: result.clientCpuShare }),
    ...(result.stopped === undefined ? {} : { firstError: result.stopped }),
  };
}

/**
 * Unary calls of `path` (gRPC, or Connect by `contentType`) started at `rate` a second whatever
 * the answers (bench/src/open-loop.ts, in this process: pin it to the load CPU), spread over
 * `connections`, each with a 1 s deadline, for the plan's unary length after its opening second.
 * Errors: calls that did not end OK by their deadline.
 */
export function openLoop(
  request: { path: string; body: Buffer; contentType: string },
  connections: number,
  rate: number,
) {
  return async (ctx: LoadContext): Promise<LoadOutcome> => {
    const result = await runOpenLoop({
      baseUrl: `http://127.0.0.1:${ctx.target.port}`,
      ...request,
      headers: { authorization: ctx.authorization },
      rate,
      connections,
      seconds: ctx.warmup ? ctx.plan.warmupSeconds : ctx.plan.unarySeconds,
      warmUpSeconds: openingSeconds,
      ...(ctx.startMeasuring === undefined ? {} : { onMeasuring: ctx.startMeasuring }),
      timeoutMs: 1000,
    });
    const ok = result.byStatus.get("0") ?? 0;
    const failed = [...result.byStatus].find(([status]) => status !== "0");
    return {
      rate: ok / result.seconds,
      completed: ok,
      latencyMs: summarizeLatencies(result.okLatenciesMs),
      errors: result.started - ok,
      generatorCpuShare: result.cpuShare,
      ...(failed === undefined ? {} : { firstError: `${failed[1]} calls ended ${failed[0]}` }),
    };
  };
}

/** How a load of 10,000 connections opens them and calls on each (see `tenThousandConnections`). */
interface ConnectionsShape {
  /** Calls each connection makes, then closes. */
  callsPerConnection: number;
  /** Calls per second of each connection (h2load --rps). */
  rpsPerConnection: number;
  /** Opened `count` every `periodMs`. */
  connectionRate: { count: number; periodMs: number };
}

/** The connections of a `tenThousandConnections` load. */
const tenThousand = 10_000;

/** Seconds to open them, `count` every `periodMs`. */
function rampOf(rate: ConnectionsShape["connectionRate"]): number {
  return (tenThousand / rate.count) * (rate.periodMs / 1000);
}

/**
 * 10,000 connections, each making GetUser calls at its own pace; h2load is stopped once the ramp
 * and the calls are over and the plan's catch-up time has passed.
 */
function tenThousandConnections(shape: (plan: Plan) => ConnectionsShape) {
  return async (ctx: LoadContext): Promise<LoadOutcome> => {
    if (ctx.warmup) return unary(10, 10)(ctx);
    const connections = tenThousand;
    const { callsPerConnection, rpsPerConnection, connectionRate } = shape(ctx.plan);
    const rampSeconds = rampOf(connectionRate);
    const result = await runH2load({
      url: `http://127.0.0.1:${ctx.target.port}/${getUser}`,
      bodyFile: ctx.getUserBody,
      headers: { authorization: ctx.authorization },
      connections,
      streamsPerConnection: 1,
      requests: connections * callsPerConnection,
      rpsPerConnection,
      connectionRate,
      cpu: ctx.variant.loadCpu,
      logFile: join(ctx.workDir, "h2load-requests.tsv"),
      timeoutSeconds: Math.ceil(
        rampSeconds + (callsPerConnection - 1) / rpsPerConnection + 1 + ctx.plan.catchUpSeconds,
      ),
    });
    return outcomeOf(result);
  };
}

/**
 * 10,000 connections opened 4,000 a second, each making one GetUser call a second: 10,000 calls a
 * second. Small batches, so a burst of handshakes does not overflow the listen backlog.
 */
const manyConnections = tenThousandConnections((plan) => ({
  callsPerConnection: plan.callsPerConnection,
  rpsPerConnection: 1,
  connectionRate: { count: 100, periodMs: 25 },
}));

/**
 * 10,000 connections held open at once by one process: opened 500 every 500 ms (10 s: a rate one
 * core accepts beside the calls, a new HTTP/2 connection costing it about 0.3 ms), each making
 * `held.calls` GetUser calls, one every `1 / held.rps` s, so every connection stays open from the
 * end of the ramp until its last call, at 1,000 calls a second once all are open. Each call comes
 * alone on its connection, the costliest way to serve one (no batching of reads or writes).
 */
const held = { calls: 4, rps: 0.1, connectionRate: { count: 500, periodMs: 500 } };
const heldConnections = tenThousandConnections(() => ({
  callsPerConnection: held.calls,
  rpsPerConnection: held.rps,
  connectionRate: held.connectionRate,
}));

const streamLoadScript = fileURLToPath(new URL("./stream-load.ts", import.meta.url));

/** What each call of a streaming load does (see `StreamLoadOptions`). */
export type StreamCall = Pick<
  StreamLoadOptions,
  "path" | "bodyBase64" | "protocol" | "messagesPerStream" | "endsItself" | "messagesPerCall"
>;

/**
 * Streaming calls by bench/src/stream-load.ts on the load CPU, `connections × streams` in flight,
 * for the plan's streaming length (or its warm-up), authorized.
 */
export function streamLoad(call: StreamCall, connections: number, streams: number) {
  return async (ctx: LoadContext): Promise<LoadOutcome> => {
    const seconds = ctx.warmup ? ctx.plan.warmupSeconds : ctx.plan.streamSeconds;
    const options: StreamLoadOptions = {
      ...call,
      origin: `http://127.0.0.1:${ctx.target.port}`,
      headers: { authorization: ctx.authorization },
      connections,
      streamsPerConnection: streams,
      durationSeconds: seconds,
    };
    const child = launch(
      [process.execPath, "--conditions=source", streamLoadScript, JSON.stringify(options)],
      { cpu: ctx.variant.loadCpu },
    );
    const done = await finish(child, (seconds + 30) * 1000);
    if (done.code !== 0) throw new Error(`stream-load failed: ${done.stderr.trim()}`);
    // JSON writes NaN (the latencies of no calls) as null.
    const result = JSON.parse(done.stdout, (_, value) => value ?? Number.NaN) as StreamLoadResult;
    return {
      rate: result.messagesPerSecond,
      completed: result.messages,
      latencyMs: result.latencyMs,
      errors: result.errors,
      generatorCpuShare: result.clientCpuShare,
      ...(result.firstError === undefined ? {} : { firstError: result.firstError }),
    };
  };
}

/** StreamUserActivities calls read to `streamMessages` messages, 4 connections × 8 calls. */
function streaming(ctx: LoadContext): Promise<LoadOutcome> {
  const call = {
    path: "/user.v1.UserService/StreamUserActivities",
    bodyBase64: ctx.streamBody.toString("base64"),
    messagesPerStream: ctx.plan.streamMessages,
  };
  return streamLoad(call, 4, 8)(ctx);
}

/** Every scenario of a run, in the order they run. */
export function scenarios(plan: Plan): Scenario[] {
  const pinned = "server pinned to CPU 1, load generator to CPU 0";
  return [
    {
      id: "unary-1",
      title: "Unary GetUser, 1 in flight",
      description: `h2load, 1 connection × 1 stream, ${plan.unarySeconds} s; ${pinned}.`,
      unit: "req/s",
      variants: peers,
      verifiedMethod: getUser,
      load: unary(1, 1),
    },
    {
      id: "unary-50",
      title: "Unary GetUser, 50 in flight",
      description: `h2load, 10 connections × 5 streams, ${plan.unarySeconds} s; ${pinned}.`,
      unit: "req/s",
      variants: peers,
      verifiedMethod: getUser,
      load: unary(10, 5),
    },
    {
      id: "unary-1000",
      title: "Unary GetUser, 1000 in flight",
      description: `h2load, 50 connections × 20 streams, ${plan.unarySeconds} s; ${pinned}.`,
      unit: "req/s",
      variants: peers,
      verifiedMethod: getUser,
      load: unary(50, 20),
    },
    {
      id: "stream",
      title: "Server streaming StreamUserActivities",
      description:
        `bench/src/stream-load.ts (node:http2; h2load counts responses, not messages, and our ` +
        `server's stream never ends by itself), 4 connections × 8 calls, each read to ` +
        `${plan.streamMessages} messages then cancelled and replaced (a connection carries at ` +
        `most 500 calls: Node's HTTP/2 closes connections whose client resets streams faster than ` +
        `its rapid-reset defence allows), ${plan.streamSeconds} s; ` +
        `${pinned}. Our server replays the user's recorded activities from SQLite; the peers send ` +
        `fixed ones of the same shape.`,
      unit: "msg/s",
      variants: peers,
      load: streaming,
    },
    {
      id: "connections-10k",
      title: "10,000 connections, one call per second each",
      description:
        `h2load, 10,000 connections opened 100 every 25 ms, each making ` +
        `${plan.callsPerConnection} GetUser calls at 1 per second (--rps 1), then closing; ${pinned}; ` +
        `and our server in cluster mode, KEEL_WORKERS=2, with h2load and the two workers not ` +
        `pinned (10,000 calls a second is more than one core of this machine answers). ` +
        `Rate = answered calls / whole run (ramp included); connections held = peak open ` +
        `descriptors of the server above idle. h2load is stopped ${plan.catchUpSeconds} s after ` +
        `the last call was due; calls unanswered by then count as errors.`,
      unit: "req/s",
      variants: [...peers, keelCluster],
      verifiedMethod: getUser,
      countConnections: true,
      load: manyConnections,
    },
    {
      id: "connections-held",
      title: `10,000 connections held at once, one call every ${1 / held.rps} s each`,
      description:
        `h2load, 10,000 connections opened ${held.connectionRate.count} every ` +
        `${held.connectionRate.periodMs} ms, each making ${held.calls} GetUser calls, one every ` +
        `${1 / held.rps} s (--rps ${held.rps}), then closing: all 10,000 are open together from ` +
        `the end of the ramp (${rampOf(held.connectionRate)} s) ` +
        `until the calls end, at ${tenThousand * held.rps} calls a second; ${pinned}. ` +
        `Connections held = peak open descriptors of the server above idle; calls unanswered ` +
        `${plan.catchUpSeconds} s after the last was due count as errors.`,
      unit: "req/s",
      variants: peers,
      verifiedMethod: getUser,
      countConnections: true,
      load: heldConnections,
    },
    {
      id: "cluster",
      title: "Cluster mode: KEEL_WORKERS=2 against one process",
      description:
        `Unary GetUser, 50 connections × 20 streams, ${plan.unarySeconds} s. One process: pinned ` +
        `to CPU 1, h2load on CPU 0. KEEL_WORKERS=2: not pinned, and h2load (not pinned either) ` +
        `competes with the two workers for the 2 cores. The ratio compares the two in this run.`,
      unit: "req/s",
      variants: [
        { label: "keel, 1 process (1 core)", kind: "keel", serverCpu, loadCpu },
        {
          label: "keel, KEEL_WORKERS=2 (2 cores)",
          kind: "keel",
          serverCpu: undefined,
          loadCpu: undefined,
          workers: 2,
        },
      ],
      verifiedMethod: getUser,
      load: unary(50, 20),
    },
  ];
}
