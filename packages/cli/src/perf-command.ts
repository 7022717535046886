import type { Command } from "./command.ts";
import {
  connectionFlags,
  connectionHelp,
  connectionOf,
  durationFlag,
  helpFlag,
  integerFlag,
  parseFlags,
} from "./flags.ts";
import { perfMethods } from "./perf-methods.ts";
import { UsageError } from "./usage-error.ts";

const usage = `usage: keel perf [--method NAME] [--concurrency N] [--connections N] [--threads N]
                 [--requests N | --duration D] [--timeout D] [--json] [connection flags]

Loads one method of a running server as fast as it answers, then reports requests/s, latency
percentiles (p50, p90, p99, max) and the count of each status code. Each worker keeps one call
in flight; workers are spread over the connections, each its own HTTP/2 connection. A progress
bar is drawn on stderr when stderr is a terminal.

flags:
  --method NAME       GetUser (default), ListUsers, CreateUser, or TrackOrder (server streaming:
                      a finished order's events, each stream read to its end)
  --concurrency N     workers, that is calls in flight (default 16)
  --connections N     HTTP/2 connections, at most --concurrency (default 1)
  --threads N         threads the connections are spread over, at most --connections
                      (default 1); more when one core cannot keep up with the server
  --requests N        stop after N calls in all
  --duration D        stop after D: 500ms, 10s, 2m, … (default 10s, unless --requests is given)
  --timeout D         deadline of each call (default 10s)
  --page-size N       ListUsers's page size (default 10)
  --json              print the summary as one JSON object on stdout
  -h, --help          show this

${connectionHelp}

Before measuring, perf signs up a user of its own (CreateUser, Login) for GetUser to get, and for
TrackOrder an order it creates and cancels; then it makes one untimed call on each connection.
The measured calls use --token when given, otherwise the new user's token; ListUsers needs the
admin role, so without --token it uses a token minted with the local configuration's key, like
keel token. The server's rate limits (KEEL_RATE_LIMIT_RPS and KEEL_RATE_LIMIT_BURST, per caller
and method) apply: raise them to measure the server rather than its limits.

The measured calls speak gRPC, gRPC-Web or Connect directly over node:http2, with each request
serialized once, so that a call costs the generator as little CPU as node:http2 allows. The
summary says how much CPU it used while measuring: close to one core per thread, the generator
rather than the server may be the limit.`;

/** `keel perf`: a load generator with a latency histogram and a per-status summary. */
export const perfCommand: Command = {
  usage,
  async run(args) {
    const flags = parseFlags(args, {
      ...helpFlag,
      ...connectionFlags,
      method: { type: "string", default: "GetUser" },
      concurrency: { type: "string" },
      connections: { type: "string" },
      threads: { type: "string" },
      requests: { type: "string" },
      duration: { type: "string" },
      timeout: { type: "string" },
      "page-size": { type: "string" },
      json: { type: "boolean", default: false },
    });
    if (flags.help) {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    const connection = await connectionOf(flags);
    const method = perfMethods.find((m) => m.toLowerCase() === flags.method.toLowerCase());
    if (method === undefined) {
      throw new UsageError(
        `--method must be one of ${perfMethods.join(", ")}, not ${JSON.stringify(flags.method)}`,
      );
    }
    const concurrency = integerFlag("concurrency", flags.concurrency, 16);
    const connections = integerFlag("connections", flags.connections, 1);
    if (connections > concurrency) {
      throw new UsageError(
        `--connections (${connections}) must not exceed --concurrency (${concurrency}): each connection needs a worker`,
      );
    }
    const threads = integerFlag("threads", flags.threads, 1);
    if (threads > connections) {
      throw new UsageError(
        `--threads (${threads}) must not exceed --connections (${connections}): each thread needs a connection`,
      );
    }
    if (flags.requests !== undefined && flags.duration !== undefined) {
      throw new UsageError("give --requests or --duration, not both");
    }
    const requests =
      flags.requests === undefined ? undefined : integerFlag("requests", flags.requests, 1);
    const durationMs =
      requests === undefined ? durationFlag("duration", flags.duration, 10_000) : undefined;
    const timeoutMs = durationFlag("timeout", flags.timeout, 10_000);
    const pageSize = integerFlag("page-size", flags["page-size"], 10);

    // Loaded after the flags are read: a mistake or --help costs no client code.
    const { runPerf } = await import("./perf-run.ts");
    return runPerf({
      ...connection,
      method,
      concurrency,
      connections,
      threads,
      requests,
      durationMs,
      timeoutMs,
      pageSize,
      json: flags.json,
    });
  },
};
