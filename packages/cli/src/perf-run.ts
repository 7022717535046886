import { randomBytes } from "node:crypto";
import { once } from "node:events";
import type { WriteStream } from "node:tty";
import { Worker } from "node:worker_threads";
import { type Code, createClient } from "@connectrpc/connect";
import { createTransport, type Protocol, type TlsOptions } from "@keel/clients";
import { OrderService } from "@keel/gen/order/v1/order_pb";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { describeError } from "./describe-error.ts";
import { Histogram } from "./histogram.ts";
import type { LoadResult } from "./load-generator.ts";
import { mintLocalToken } from "./local-token.ts";
import type { PerfMethod } from "./perf-methods.ts";
import { failureWarning, formatSummary, summarize } from "./perf-report.ts";
import { createShard, type ShardOptions, type ShardResult, splitShards } from "./perf-shard.ts";
import { startProgressBar } from "./progress-bar.ts";

export interface PerfOptions {
  baseUrl: string;
  protocol: Protocol;
  /** CA and client certificate for an https:// server, when given. */
  tls: TlsOptions | undefined;
  /** The measured calls' token; when absent, perf's own user's (or an admin one for ListUsers). */
  token: string | undefined;
  method: PerfMethod;
  /** Workers, each with one call in flight. */
  concurrency: number;
  /** HTTP/2 connections the workers are spread over. */
  connections: number;
  /** Threads the connections are spread over (1: this one only). */
  threads: number;
  /** Stop after this many calls; otherwise after `durationMs`. */
  requests: number | undefined;
  durationMs: number | undefined;
  /** Deadline of each call, in milliseconds. */
  timeoutMs: number;
  /** ListUsers's page size. */
  pageSize: number;
  /** Print the summary as one JSON object. */
  json: boolean;
}

/**
 * Prepares what the method needs, warms up each connection, measures, and prints the summary on
 * stdout (with a progress bar on stderr when it is a terminal). Resolves to the exit code: 1 when
 * the preparation fails; failed measured calls are counted, not fatal.
 */
export async function runPerf(options: PerfOptions): Promise<number> {
  let target: Target;
  try {
    target = await prepare(options);
  } catch (err) {
    process.stderr.write(`keel perf: preparing ${options.method} failed: ${describeError(err)}\n`);
    return 1;
  }
  const shardOptions: ShardOptions = {
    ...options,
    token: target.token,
    userId: target.userId,
    orderId: target.orderId,
  };
  const shards =
    options.threads === 1
      ? [inThisThread(shardOptions)]
      : splitShards(shardOptions, options.threads).map(inWorkerThread);
  // Every shard connects and warms up before the clock starts, together.
  await Promise.all(shards.map((shard) => shard.ready));
  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  const results = Promise.all(shards.map((shard) => shard.go()));
  const completed = () => shards.reduce((sum, shard) => sum + shard.completed(), 0);
  const { requests, durationMs } = options;
  const stderr = process.stderr as WriteStream;
  const stopBar = stderr.isTTY
    ? startProgressBar({
        stream: stderr,
        completed,
        fraction: () =>
          requests === undefined
            ? (performance.now() - startedAt) / (durationMs ?? 1)
            : completed() / requests,
      })
    : undefined;
  const measured = merge(await results, performance.now() - startedAt);
  // CPU of every thread of this process while measuring.
  const cpu = process.cpuUsage(cpuBefore);
  stopBar?.();
  const summary = summarize(
    {
      method: options.method,
      url: options.baseUrl,
      protocol: options.protocol,
      concurrency: options.concurrency,
      connections: options.connections,
      threads: options.threads,
      streaming: options.method === "TrackOrder",
      messages: measured.messages,
      cpuMs: (cpu.user + cpu.system) / 1000,
    },
    measured,
  );
  process.stdout.write(`${options.json ? JSON.stringify(summary) : formatSummary(summary)}\n`);
  // On stderr, so that --json's stdout stays one object.
  const warning = failureWarning(summary);
  if (warning !== undefined) process.stderr.write(`${warning}\n`);
  return 0;
}

/** A shard being prepared, then measuring. */
interface RunningShard {
  /** Settles once the shard is warmed up. */
  ready: Promise<void>;
  /** Starts measuring. */
  go(): Promise<ShardResult>;
  /** Calls finished so far. */
  completed(): number;
}

function inThisThread(options: ShardOptions): RunningShard {
  const shard = createShard(options);
  let progress: { completed: number } = { completed: 0 };
  return {
    ready: shard.warmUp(),
    go() {
      const run = shard.run();
      progress = run.progress;
      return run.result;
    },
    completed: () => progress.completed,
  };
}

// The worker thread's module, from sources (.ts) or from the build (.js) like this one.
const workerModule = new URL(
  `./perf-worker${import.meta.url.slice(import.meta.url.lastIndexOf("."))}`,
  import.meta.url,
);

function inWorkerThread(options: ShardOptions, index: number): RunningShard {
  const progress = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(workerModule, { workerData: { options, progress } });
  const failed = new Promise<never>((_, reject) => {
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`perf thread ${index} exited (${code})`)));
  });
  const next = () =>
    Promise.race([once(worker, "message").then(([message]) => message as unknown), failed]);
  const ready = next().then(() => undefined);
  return {
    ready,
    async go() {
      worker.postMessage("go");
      const result = (await next()) as ShardResult;
      await worker.terminate();
      return result;
    },
    completed: () => Atomics.load(progress, 0),
  };
}

/** The shards' results as one. */
function merge(results: ShardResult[], elapsedMs: number): LoadResult & { messages: number } {
  const latencies = new Histogram();
  const byCode = new Float64Array(17);
  const firstErrors = new Map<Code, string>();
  let messages = 0;
  for (const result of results) {
    latencies.add(Histogram.fromData(result.latencies));
    for (let code = 0; code < byCode.length; code++) {
      byCode[code] = (byCode[code] as number) + (result.byCode[code] ?? 0);
    }
    for (const [code, message] of result.firstErrors) {
      if (!firstErrors.has(code)) firstErrors.set(code, message);
    }
    messages += result.messages;
  }
  return { latencies, byCode, firstErrors, elapsedMs, messages };
}

interface Target {
  token: string | undefined;
  userId: bigint;
  orderId: bigint;
}

/** Signs up the user (and for TrackOrder the cancelled order) that the measured calls use. */
async function prepare(options: PerfOptions): Promise<Target> {
  const { method } = options;
  if (method === "CreateUser") return { token: options.token, userId: 0n, orderId: 0n };
  const { baseUrl, protocol, tls } = options;
  const transport = createTransport({ baseUrl, protocol, tls });
  const users = createClient(UserService, transport);
  const username = `perf-${randomBytes(4).toString("hex")}`;
  const password = "perf password 1";
  const { user } = await users.createUser({ username, email: `${username}@example.com`, password });
  const userId = user?.userId ?? 0n;
  const { accessToken } = await users.login({ username, password });
  let orderId = 0n;
  if (method === "TrackOrder") {
    const orders = createClient(OrderService, transport);
    const headers = new Headers({ authorization: `Bearer ${accessToken}` });
    const { order } = await orders.createOrder(
      {
        userId,
        items: [
          {
            sku: "PERF-1",
            name: "perf item",
            quantity: 1,
            unitPrice: { currencyCode: "USD", amountMinor: 100n },
          },
        ],
      },
      { headers },
    );
    orderId = order?.orderId ?? 0n;
    // A cancelled order's TrackOrder sends its history (CREATED, CANCELLED), then ends.
    await orders.cancelOrder({ orderId, reason: "perf" }, { headers });
  }
  const token =
    options.token ??
    (method === "ListUsers" ? await mintLocalToken(userId, ["admin"]) : accessToken);
  return { token, userId, orderId };
}
