import * as http2 from "node:http2";

/** One open-loop run: unary gRPC (or Connect) calls started at a fixed rate, whatever the answers. */
export interface OpenLoopOptions {
  /** `http://127.0.0.1:PORT` */
  baseUrl: string;
  /** `/package.Service/Method` */
  path: string;
  /** The request body: one gRPC length-prefixed message (see `grpcFrame`), or Connect's. */
  body: Buffer;
  /**
   * `application/grpc` (default), or a Connect unary call's (`application/proto`,
   * `application/json`): its status is then the HTTP status, 200 counted as OK ("0").
   */
  contentType?: string;
  headers?: Record<string, string>;
  /** Calls started per second, spread evenly over `connections`. */
  rate: number;
  /** Connections the calls are spread over. */
  connections: number;
  /** How long calls are started, in seconds; calls in flight then get `drainMs` to end. */
  seconds: number;
  /** Calls started in this opening part are made but not counted, in seconds. Default 0. */
  warmUpSeconds?: number;
  /** Called when the measured period begins (after the warm-up). */
  onMeasuring?: () => void;
  /** The deadline sent with each call (`grpc-timeout`), in ms; the caller gives up then. */
  timeoutMs: number;
}

/** What happened to the calls started in the measured period. */
export interface OpenLoopResult {
  /** Calls started in the measured period. */
  started: number;
  /**
   * Calls by gRPC status (0 OK; Connect: "0" for HTTP 200, else "HTTP n"), "none" for those
   * without an answer by their deadline.
   */
  byStatus: Map<string, number>;
  /** Latency of each OK call, in ms, ascending. */
  okLatenciesMs: Float64Array;
  /** The measured period, in seconds. */
  seconds: number;
  /** This process's CPU time over the measured period, as a share of one CPU. */
  cpuShare: number;
}

/**
 * Starts calls at `rate` per second (each millisecond, the calls due by then), as independent
 * callers do: a slow server does not slow the arrivals (unlike h2load's per-connection --rps,
 * which waits for a free stream). Each call's status comes from its trailers, so a refusal in
 * HTTP 200 (gRPC's way) is told apart from success.
 */
export async function runOpenLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const sessions = Array.from({ length: options.connections }, () => {
    const session = http2.connect(options.baseUrl);
    session.on("error", () => {});
    return session;
  });
  await Promise.all(
    sessions.map((s) => new Promise((resolve) => s.once("connect", () => resolve(undefined)))),
  );
  const grpc = (options.contentType ?? "application/grpc") === "application/grpc";
  const headers = {
    ":method": "POST",
    ":path": options.path,
    ...(grpc
      ? {
          "content-type": "application/grpc",
          te: "trailers",
          "grpc-timeout": `${options.timeoutMs}m`,
        }
      : {
          "content-type": options.contentType,
          "connect-protocol-version": "1",
          "connect-timeout-ms": String(options.timeoutMs),
        }),
    ...options.headers,
  };
  const warmUpMs = (options.warmUpSeconds ?? 0) * 1000;
  const totalMs = warmUpMs + options.seconds * 1000;
  const byStatus = new Map<string, number>();
  const latencies: number[] = [];
  let started = 0;
  let pending = 0;
  let sent = 0;
  const t0 = performance.now();
  let cpuAtStart = process.cpuUsage();
  const measuring = setTimeout(() => {
    cpuAtStart = process.cpuUsage();
    options.onMeasuring?.();
  }, warmUpMs);
  const count = (status: string) => byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
  const call = (measured: boolean) => {
    const session = sessions[sent % sessions.length] as http2.ClientHttp2Session;
    sent++;
    if (measured) started++;
    pending++;
    const at = performance.now();
    let status: string | undefined;
    let settled = false;
    const done = (final: string) => {
      if (settled) return;
      settled = true;
      pending--;
      clearTimeout(timer);
      if (!measured) return;
      count(final);
      if (final === "0") latencies.push(performance.now() - at);
    };
    // The caller's own deadline: past it, the answer no longer counts (the server was told too).
    const timer = setTimeout(() => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      done("none");
    }, options.timeoutMs);
    const stream = session.request(headers);
    stream.on("response", (h) => {
      if (!grpc) status = h[":status"] === 200 ? "0" : `HTTP ${h[":status"]}`;
      else if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
    });
    stream.on("trailers", (h) => {
      if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
    });
    stream.on("data", () => {});
    stream.on("error", () => done("none"));
    stream.on("close", () => done(status ?? "none"));
    stream.end(options.body);
  };
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const elapsed = performance.now() - t0;
      const due = Math.min(totalMs, elapsed) * (options.rate / 1000);
      while (sent < due) call(sent / (options.rate / 1000) >= warmUpMs);
      if (elapsed >= totalMs) {
        clearInterval(tick);
        clearTimeout(measuring);
        resolve();
      }
    }, 1);
  });
  const cpu = process.cpuUsage(cpuAtStart);
  const drainUntil = performance.now() + options.timeoutMs + 1000;
  while (pending > 0 && performance.now() < drainUntil) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  for (const session of sessions) session.destroy();
  return {
    started,
    byStatus,
    okLatenciesMs: Float64Array.from(latencies).sort(),
    seconds: options.seconds,
    cpuShare: (cpu.user + cpu.system) / 1e6 / options.seconds,
  };
}
