/**
 * A load generator for streaming calls, which h2load cannot measure: it counts messages, not
 * responses, and our server's StreamUserActivities never ends by itself (after the history it
 * waits for live activities). Keeps `connections × streamsPerConnection` calls open over gRPC or
 * Connect; each sends its request messages, is read until `messagesPerStream` messages arrived,
 * then cancelled (or, with `endsItself`, must end OK), and is replaced. Prints its result as
 * JSON. Run as a child process (pinned like h2load):
 *
 *   node --conditions=source bench/src/stream-load.ts '<StreamLoadOptions as JSON>'
 */
import * as http2 from "node:http2";
import { GrpcMessageCounter } from "./grpc-frame.ts";
import { summarizeLatencies } from "./stats.ts";

export interface StreamLoadOptions {
  /** `http://127.0.0.1:PORT` */
  origin: string;
  /** `/package.Service/Method` */
  path: string;
  /** The request messages, each gRPC length-prefixed (as Connect's are), base64. */
  bodyBase64: string;
  /** gRPC (default) or the Connect protocol (`application/connect+proto`). */
  protocol?: "grpc" | "connect";
  headers: Record<string, string>;
  connections: number;
  streamsPerConnection: number;
  /** Messages each call reads. */
  messagesPerStream: number;
  /**
   * The server ends each call, OK, after its messages (client and bidi streaming); default: it
   * does not, and the call is cancelled once it read them.
   */
  endsItself?: boolean;
  /**
   * Messages a call streams, sent or received (client streaming: the messages sent); default
   * `messagesPerStream`.
   */
  messagesPerCall?: number;
  durationSeconds: number;
}

export interface StreamLoadResult {
  /**
   * Messages within the measured duration: those received as they arrive, and the rest of
   * `messagesPerCall` (the messages sent beyond those answered) when their call is done.
   */
  messages: number;
  messagesPerSecond: number;
  /** Calls that got all their messages. */
  streams: number;
  /** Calls that ended early, failed, or ended with a status other than OK. */
  errors: number;
  /** Time from starting a call to its last wanted message, in milliseconds. */
  latencyMs: { p50: number; p99: number; max: number };
  /** The first error seen, if any. */
  firstError?: string;
  /** This client's CPU time over the run's length: near 1, the client (not the server) limits. */
  clientCpuShare: number;
}

/** Runs the load for `durationSeconds`, then closes every connection. */
export async function runStreamLoad(options: StreamLoadOptions): Promise<StreamLoadResult> {
  const body = Buffer.from(options.bodyBase64, "base64");
  const overConnect = options.protocol === "connect";
  const endsItself = options.endsItself === true;
  const messagesPerCall = options.messagesPerCall ?? options.messagesPerStream;
  const cpuAtStart = process.cpuUsage();
  const deadline = performance.now() + options.durationSeconds * 1000;
  const latencies: number[] = [];
  let messages = 0;
  let streams = 0;
  let errors = 0;
  let firstError: string | undefined;
  const fail = (reason: string) => {
    errors++;
    firstError ??= reason;
  };

  // One call: resolves when it got its messages (and was cancelled), ended or failed.
  const call = (session: http2.ClientHttp2Session) =>
    new Promise<void>((resolve) => {
      const started = performance.now();
      const counter = new GrpcMessageCounter();
      let endedOk = false;
      let done = false;
      const finish = (reason?: string) => {
        if (done) return;
        done = true;
        if (reason !== undefined) fail(reason);
        else {
          const now = performance.now();
          if (now <= deadline) {
            streams++;
            // The messages sent beyond those answered count once the call is done.
            messages += messagesPerCall - options.messagesPerStream;
            latencies.push(now - started);
          }
        }
        if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
        resolve();
      };
      const stream = session.request({
        ":method": "POST",
        ":path": options.path,
        ...(overConnect
          ? { "content-type": "application/connect+proto", "connect-protocol-version": "1" }
          : { "content-type": "application/grpc", te: "trailers" }),
        ...options.headers,
      });
      stream.on("response", (headers) => {
        const status = headers["grpc-status"];
        if (headers[":status"] !== 200 || (status !== undefined && status !== "0")) {
          finish(`HTTP ${headers[":status"]}, grpc-status ${status}: ${headers["grpc-message"]}`);
        }
        endedOk = status === "0";
      });
      stream.on("data", (chunk: Buffer) => {
        const got = counter.push(chunk);
        if (performance.now() <= deadline) messages += got;
        if (counter.endOfStream !== undefined) {
          const error = connectEndError(counter.endOfStream);
          if (error !== undefined) finish(error);
          endedOk = true;
        }
        if (counter.count < options.messagesPerStream) return;
        // A call that is cancelled may have been sent more in the meantime; one that ends must
        // not send more.
        if (!endsItself) finish();
        else if (counter.count > options.messagesPerStream) {
          finish(`more than ${options.messagesPerStream} messages`);
        }
      });
      stream.on("trailers", (trailers) => {
        const status = trailers["grpc-status"];
        if (status !== "0") finish(`grpc-status ${status}: ${trailers["grpc-message"]}`);
        endedOk = true;
      });
      stream.on("error", (err) => finish(err.message));
      stream.on("close", () =>
        finish(
          counter.count < options.messagesPerStream
            ? `stream ended after ${counter.count} of ${options.messagesPerStream} messages`
            : endedOk
              ? undefined
              : "stream ended without an OK status",
        ),
      );
      stream.end(body);
    });

  // Node's HTTP/2 (nghttp2) closes a connection whose client resets streams faster than it
  // allows (a burst of 1000, then 33 a second: its "rapid reset" defence), and every call here
  // ends with a reset. So each connection carries at most this many calls, then is replaced.
  const callsPerSession = 500;
  const opened: http2.ClientHttp2Session[] = [];
  const connect = () => {
    const session = http2.connect(options.origin, { settings: { initialWindowSize: 1 << 24 } });
    session.on("error", (err) => fail(err.message));
    opened.push(session);
    return { session, calls: 0, active: 0, retired: false };
  };
  const connections = Array.from({ length: options.connections }, connect);
  const loops = connections.flatMap((_, i) =>
    Array.from({ length: options.streamsPerConnection }, async () => {
      while (performance.now() < deadline) {
        let connection = connections[i] as ReturnType<typeof connect>;
        if (connection.calls >= callsPerSession) {
          // Retired: closed once its calls in flight are done (closing at once refuses them).
          connection.retired = true;
          connection = connect();
          connections[i] = connection;
        }
        if (connection.session.destroyed) break;
        connection.calls++;
        connection.active++;
        await call(connection.session);
        connection.active--;
        if (connection.retired && connection.active === 0) connection.session.close();
      }
    }),
  );
  // A call that hangs past the end is cut off (and counted) rather than holding the run open.
  const cutOff = setTimeout(
    () => {
      for (const session of opened) session.destroy();
    },
    options.durationSeconds * 1000 + 5000,
  );
  await Promise.all(loops);
  clearTimeout(cutOff);
  for (const session of opened) session.close();
  const cpu = process.cpuUsage(cpuAtStart);
  return {
    clientCpuShare: (cpu.user + cpu.system) / 1e6 / options.durationSeconds,
    messages,
    messagesPerSecond: messages / options.durationSeconds,
    streams,
    errors,
    latencyMs: summarizeLatencies(latencies),
    ...(firstError === undefined ? {} : { firstError }),
  };
}

/** The error a Connect end-of-stream message carries, if any, as text. */
function connectEndError(json: Buffer): string | undefined {
  const end = JSON.parse(String(json)) as { error?: { code?: string; message?: string } };
  return end.error === undefined
    ? undefined
    : `Connect error ${end.error.code}: ${end.error.message ?? ""}`;
}

if (import.meta.main) {
  const options = JSON.parse(process.argv[2] ?? "") as StreamLoadOptions;
  runStreamLoad(options).then(
    (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
