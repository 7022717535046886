import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { type SpanContext, TraceFlags, trace } from "@opentelemetry/api";
import {
  collectDefaultMetrics,
  type Metric,
  Registry,
  type RegistryContentType,
} from "prom-client";

export interface ServerMetricsOptions {
  /**
   * The services served. Every series of each of their methods exists from the start, at zero,
   * as go-grpc-middleware's `InitializeMetrics` makes them: started, received, sent, in flight
   * and the histogram per method, and handled per method for every code. A method of another
   * service appears at its first call.
   */
  services: DescService[];
  /**
   * Where the metrics are registered; it may be shared with `createClientMetrics` and other
   * libraries. Default: a new prom-client `Registry`. Serve it with `createMetricsHandler` so a
   * scraper asking for OpenMetrics also gets the trace exemplars.
   */
  registry?: Registry<RegistryContentType>;
  /**
   * Upper bounds in seconds of the `grpc_server_handling_seconds` buckets, increasing.
   * Default: Prometheus' and go-grpc-middleware's `[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
   * 1, 2.5, 5, 10]`.
   */
  buckets?: number[];
  /**
   * Also register prom-client's process and Node.js metrics (CPU, memory, event-loop lag, GC),
   * unless the registry has them already. Default: true.
   */
  collectDefaultMetrics?: boolean;
}

export interface ServerMetrics {
  /** The server interceptor recording every call, unary and streaming. */
  interceptor: Interceptor;
  /** The registry the metrics are in. */
  registry: Registry<RegistryContentType>;
  /** Calls being handled now, all methods together: what `grpc_server_requests_in_flight` sums to. */
  inFlight(): number;
}

export interface ClientMetricsOptions {
  /** Services whose methods are reported at zero from the start. Default: none — a method appears at its first call. */
  services?: DescService[];
  /** Where the metrics are registered, for example the server's. Default: a new prom-client `Registry`. */
  registry?: Registry<RegistryContentType>;
  /** Upper bounds in seconds of the `grpc_client_handling_seconds` buckets. Default: as the server's. */
  buckets?: number[];
  /** Also register prom-client's process and Node.js metrics. Default: false — the server's registry usually has them. */
  collectDefaultMetrics?: boolean;
}

export interface ClientMetrics {
  /** The client interceptor recording every call, unary and streaming. */
  interceptor: Interceptor;
  /** The registry the metrics are in. */
  registry: Registry<RegistryContentType>;
}

const defaultBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** gRPC's OK, which connect's `Code` leaves out. */
const ok = 0;

/** Go's `codes.Code.String()`, indexed by code. */
const codeNames = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
];

const grpcTypes = {
  unary: "unary",
  server_streaming: "server_stream",
  client_streaming: "client_stream",
  bidi_streaming: "bidi_stream",
} as const;

/**
 * Server metrics named and labelled as go-grpc-middleware's `providers/prometheus` names them, so
 * the dashboards and alerts of Go gRPC teams work unchanged: `grpc_server_started_total`,
 * `grpc_server_handled_total` (with `grpc_code`), `grpc_server_msg_received_total`,
 * `grpc_server_msg_sent_total` and the histogram `grpc_server_handling_seconds`, each labelled
 * `grpc_type`, `grpc_service` and `grpc_method`. One more, the gauge
 * `grpc_server_requests_in_flight`, has the same three labels, so it joins the others without
 * `ignoring` and `sum by (grpc_type)` shows the open streams.
 *
 * A unary call counts one message each way (sent only on success). A streaming call counts each
 * message as it passes and is handled when its response stream ends: completed, failed, or
 * cancelled by the client (`Canceled`, or `DeadlineExceeded` when its deadline passed). A plain
 * error counts as `Internal`, the code connect sends for it.
 *
 * When a sampled OpenTelemetry span is active as the call starts (the tracing interceptor, placed
 * before this one, runs `next` in its span's context), its `trace_id` and `span_id` become the
 * exemplar of the call's histogram bucket and `grpc_server_handled_total` series. They appear in
 * OpenMetrics output only.
 *
 * A call costs a map lookup and a few additions: the series are plain numbers per method, turned
 * into samples only when scraped (prom-client's own metrics hash their labels on every update).
 */
export function createServerMetrics(options: ServerMetricsOptions): ServerMetrics {
  const table = createMethodTable("server", options);
  family(
    table,
    "grpc_server_requests_in_flight",
    "gauge",
    "Number of RPCs being handled by the server.",
    {
      read: (s, out) => out.push({ labels: s.labels, value: s.inFlight }),
      // Calls in flight stay in flight: zeroing them would drive the gauge negative as they end.
      reset: () => {},
    },
  );
  if (options.collectDefaultMetrics ?? true) registerDefaultMetrics(table.registry);
  return {
    interceptor: createInterceptor(table, true),
    registry: table.registry,
    inFlight() {
      let n = 0;
      for (const stats of table.methods.values()) n += stats.inFlight;
      return n;
    },
  };
}

/**
 * The client-side counterparts of `createServerMetrics`, as go-grpc-middleware names them:
 * `grpc_client_started_total`, `grpc_client_handled_total`, `grpc_client_msg_received_total`,
 * `grpc_client_msg_sent_total` and `grpc_client_handling_seconds`. A streaming call is handled
 * when the application has read its response to the end, or when it is cancelled or its deadline
 * passes (`Canceled`, `DeadlineExceeded`). An application that stops reading a stream without
 * cancelling it leaves the call open, to connect and to these metrics.
 */
export function createClientMetrics(options: ClientMetricsOptions = {}): ClientMetrics {
  const table = createMethodTable("client", options);
  if (options.collectDefaultMetrics ?? false) registerDefaultMetrics(table.registry);
  return { interceptor: createInterceptor(table, false), registry: table.registry };
}

type Side = "server" | "client";

interface MethodTable {
  registry: Registry<RegistryContentType>;
  methods: Map<DescMethod, MethodStats>;
  statsFor(method: DescMethod): MethodStats;
}

/** The per-method records of one side, and the metric families reading them. */
function createMethodTable(
  side: Side,
  options: ServerMetricsOptions | ClientMetricsOptions,
): MethodTable {
  const registry = options.registry ?? new Registry();
  const bounds = options.buckets ?? defaultBuckets;
  if (bounds.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= (bounds[i - 1] as number)))) {
    throw new Error(`buckets must be finite and increasing, got [${bounds.join(", ")}]`);
  }
  const methods = new Map<DescMethod, MethodStats>();
  const add = (method: DescMethod) => {
    const stats = new MethodStats(method, bounds);
    methods.set(method, stats);
    return stats;
  };
  for (const service of options.services ?? []) for (const method of service.methods) add(method);
  const table = { registry, methods, statsFor: (m: DescMethod) => methods.get(m) ?? add(m) };

  const on = side === "server" ? "on the server" : "by the client";
  const count = (field: "started" | "received" | "sent", name: string, help: string) =>
    family(table, name, "counter", help, {
      read: (stats, out) => out.push({ labels: stats.labels, value: stats[field] }),
      reset: (stats) => {
        stats[field] = 0;
      },
    });
  count("started", `grpc_${side}_started_total`, `Total number of RPCs started on the ${side}.`);
  family(
    table,
    `grpc_${side}_handled_total`,
    "counter",
    `Total number of RPCs completed ${on}, regardless of success or failure.`,
    {
      read: (s, out) => {
        for (let code = 0; code < codeNames.length; code++) {
          const exemplar = s.handledExemplars[code];
          out.push({
            labels: s.codeLabels[code] as Labels,
            value: s.handled[code] as number,
            exemplar,
          });
        }
      },
      reset: (s) => {
        s.handled.fill(0);
        s.handledExemplars.length = 0;
      },
    },
  );
  count(
    "received",
    `grpc_${side}_msg_received_total`,
    `Total number of RPC stream messages received ${on}.`,
  );
  count(
    "sent",
    `grpc_${side}_msg_sent_total`,
    `Total number of gRPC stream messages sent by the ${side}.`,
  );
  const histogram = `grpc_${side}_handling_seconds`;
  family(
    table,
    histogram,
    "histogram",
    side === "server"
      ? "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server."
      : "Histogram of response latency (seconds) of the gRPC until it is finished by the application.",
    {
      read: (s, out) => {
        let cumulative = 0;
        for (let b = 0; b <= bounds.length; b++) {
          cumulative += s.buckets[b] as number;
          const le = b < bounds.length ? (bounds[b] as number) : "+Inf";
          const exemplar = s.bucketExemplars[b];
          out.push({
            labels: { ...s.labels, le },
            value: cumulative,
            metricName: `${histogram}_bucket`,
            exemplar,
          });
        }
        out.push({ labels: s.labels, value: s.sum, metricName: `${histogram}_sum` });
        out.push({ labels: s.labels, value: s.count, metricName: `${histogram}_count` });
      },
      reset: (s) => {
        s.buckets.fill(0);
        s.bucketExemplars.length = 0;
        s.sum = 0;
        s.count = 0;
      },
    },
  );
  return table;
}

/** prom-client's process and Node.js metrics, unless the registry has them (they may be registered once only). */
function registerDefaultMetrics(registry: Registry<RegistryContentType>): void {
  if (registry.getSingleMetric("process_cpu_seconds_total") === undefined) {
    collectDefaultMetrics({ register: registry });
  }
}

type Labels = Readonly<Record<string, string | number>>;

/** An exemplar as prom-client's registry prints it; one per series, overwritten in place. */
interface Exemplar {
  labelSet: { trace_id: string; span_id: string };
  value: number;
  timestamp: number;
}

/** A sample as prom-client's registry reads it from a metric's `get()`. */
interface Sample {
  labels: Labels;
  value: number;
  metricName?: string;
  exemplar?: Exemplar | undefined;
}

/** Everything recorded about one method, as plain numbers. */
class MethodStats {
  /** Label names in the order Go's client prints them (sorted). */
  readonly labels: Labels;
  readonly codeLabels: Labels[];
  started = 0;
  received = 0;
  sent = 0;
  inFlight = 0;
  readonly handled = new Float64Array(codeNames.length);
  readonly handledExemplars: (Exemplar | undefined)[] = [];
  /** Observations per bucket, not cumulative; the last one is +Inf. */
  readonly buckets: Float64Array;
  readonly bucketExemplars: (Exemplar | undefined)[] = [];
  sum = 0;
  count = 0;
  private readonly bounds: readonly number[];

  constructor(method: DescMethod, bounds: readonly number[]) {
    this.bounds = bounds;
    const grpc_method = method.name;
    const grpc_service = method.parent.typeName;
    const grpc_type = grpcTypes[method.methodKind];
    this.labels = Object.freeze({ grpc_method, grpc_service, grpc_type });
    this.codeLabels = codeNames.map((grpc_code) =>
      Object.freeze({ grpc_code, grpc_method, grpc_service, grpc_type }),
    );
    this.buckets = new Float64Array(bounds.length + 1);
  }

  /** Counts a call as started and returns its start time. */
  begin(): number {
    this.started++;
    this.inFlight++;
    return performance.now();
  }

  /** Records a call's outcome and duration. */
  finish(code: number, start: number, exemplar: SpanContext | undefined): void {
    const seconds = (performance.now() - start) / 1e3;
    const c = code >= 0 && code < codeNames.length ? code : Code.Unknown;
    this.inFlight--;
    this.handled[c] = (this.handled[c] as number) + 1;
    const bounds = this.bounds;
    let b = 0;
    while (b < bounds.length && seconds > (bounds[b] as number)) b++;
    this.buckets[b] = (this.buckets[b] as number) + 1;
    this.sum += seconds;
    this.count++;
    if (exemplar !== undefined) {
      setExemplar(this.handledExemplars, c, exemplar, 1);
      setExemplar(this.bucketExemplars, b, exemplar, seconds);
    }
  }
}

function setExemplar(slots: (Exemplar | undefined)[], i: number, span: SpanContext, value: number) {
  let exemplar = slots[i];
  if (exemplar === undefined) {
    exemplar = { labelSet: { trace_id: "", span_id: "" }, value: 0, timestamp: 0 };
    slots[i] = exemplar;
  }
  exemplar.labelSet.trace_id = span.traceId;
  exemplar.labelSet.span_id = span.spanId;
  exemplar.value = value;
  exemplar.timestamp = Date.now() / 1e3;
}

/**
 * Registers one metric family computed from the method records when scraped. It has the shape
 * prom-client's `Registry` reads from its own metrics (`name`, `help`, `type`, `get`, `reset`), so
 * the registry prints it with its own code, in either format, next to any other metric.
 */
function family(
  table: MethodTable,
  name: string,
  type: "counter" | "gauge" | "histogram",
  help: string,
  io: { read: (stats: MethodStats, out: Sample[]) => void; reset: (stats: MethodStats) => void },
): void {
  const metric = {
    // Not a constant: prom-client renames counters (drops `_total`) when printing OpenMetrics.
    name,
    help,
    type,
    aggregator: "sum",
    async get() {
      const values: Sample[] = [];
      for (const stats of table.methods.values()) io.read(stats, values);
      return { name: metric.name, help, type, aggregator: "sum", values };
    },
    reset() {
      for (const stats of table.methods.values()) io.reset(stats);
    },
  };
  // prom-client types registerMetric for its own classes only; the registry itself needs no more.
  table.registry.registerMetric(metric as unknown as Metric);
}

/** The span context of the active span, if it is sampled. */
function sampledSpan(): SpanContext | undefined {
  const span = trace.getActiveSpan();
  if (span === undefined) return undefined;
  const context = span.spanContext();
  return (context.traceFlags & TraceFlags.SAMPLED) !== 0 ? context : undefined;
}

/** What a client receives for an error thrown by a handler: connect sends plain errors as Internal. */
const serverCode = (e: unknown): number => (e instanceof ConnectError ? e.code : Code.Internal);
const clientCode = (e: unknown): number => ConnectError.from(e).code;

/** One interceptor for both sides: a server receives requests and sends responses, a client the reverse. */
function createInterceptor(table: MethodTable, server: boolean): Interceptor {
  const errorCode = server ? serverCode : clientCode;
  return (next) => async (req) => {
    const stats = table.statsFor(req.method);
    // Taken as the call starts: the span is active while `next` is called, not when a stream ends.
    const exemplar = sampledSpan();
    const start = stats.begin();
    if (!req.stream) {
      countOne(stats, !server);
      let res: Awaited<ReturnType<typeof next>>;
      try {
        res = await next(req);
      } catch (e) {
        stats.finish(errorCode(e), start, exemplar);
        throw e;
      }
      if (!res.stream) {
        countOne(stats, server);
        stats.finish(ok, start, exemplar);
        return res;
      }
      const call = new StreamCall(stats, start, exemplar, errorCode, req.signal);
      return { ...res, message: new CountedStream(res.message, call, server, true) };
    }
    const call = new StreamCall(stats, start, exemplar, errorCode, req.signal);
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next({ ...req, message: new CountedStream(req.message, call, !server, false) });
    } catch (e) {
      call.end(errorCode(e));
      throw e;
    }
    if (!res.stream) {
      countOne(stats, server);
      call.end(ok);
      return res;
    }
    return { ...res, message: new CountedStream(res.message, call, server, true) };
  };
}

function countOne(stats: MethodStats, outgoing: boolean): void {
  if (outgoing) stats.sent++;
  else stats.received++;
}

/**
 * A streaming call in flight: counts its messages and records its outcome once. A call can end
 * without its response stream telling: on a server, a client that goes away; on a client, a cancel
 * or deadline (connect's client then stops reading the stream without a word). The call's signal
 * aborting tells both. Connect also aborts it once a call is over, by which time the call is
 * recorded and the listener gone.
 */
class StreamCall {
  readonly stats: MethodStats;
  readonly errorCode: (e: unknown) => number;
  private readonly start: number;
  private readonly exemplar: SpanContext | undefined;
  private readonly signal: AbortSignal | undefined;
  private open = true;

  constructor(
    stats: MethodStats,
    start: number,
    exemplar: SpanContext | undefined,
    errorCode: (e: unknown) => number,
    signal: AbortSignal | undefined,
  ) {
    this.stats = stats;
    this.start = start;
    this.exemplar = exemplar;
    this.errorCode = errorCode;
    this.signal = signal;
    signal?.addEventListener("abort", this);
  }

  /** The signal's abort listener (an object, so no closure per call). */
  handleEvent(): void {
    const reason: unknown = this.signal?.reason;
    this.end(reason instanceof ConnectError ? reason.code : Code.Canceled);
  }

  end(code: number): void {
    if (!this.open) return;
    this.open = false;
    this.signal?.removeEventListener("abort", this);
    this.stats.finish(code, this.start, this.exemplar);
  }
}

/** A stream of a call, counting its messages as they are pulled through; the response stream also ends the call. */
class CountedStream<T> implements AsyncIterator<T> {
  private readonly source: AsyncIterable<T>;
  private readonly call: StreamCall;
  private readonly outgoing: boolean;
  private readonly endsCall: boolean;
  private iterator: AsyncIterator<T> | undefined;

  constructor(source: AsyncIterable<T>, call: StreamCall, outgoing: boolean, endsCall: boolean) {
    this.source = source;
    this.call = call;
    this.outgoing = outgoing;
    this.endsCall = endsCall;
  }

  [Symbol.asyncIterator](): this {
    this.iterator = this.source[Symbol.asyncIterator]();
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    this.iterator ??= this.source[Symbol.asyncIterator]();
    return this.iterator.next().then(this.onResult, this.onError);
  }

  return(value?: unknown): Promise<IteratorResult<T>> {
    if (this.endsCall) this.call.end(Code.Canceled);
    return this.iterator?.return?.(value) ?? Promise.resolve({ done: true, value: undefined });
  }

  throw(e?: unknown): Promise<IteratorResult<T>> {
    if (this.endsCall) this.call.end(this.call.errorCode(e));
    return this.iterator?.throw?.(e) ?? Promise.reject(e);
  }

  // Fields, not methods: bound once per stream rather than once per message.
  private readonly onResult = (result: IteratorResult<T>): IteratorResult<T> => {
    if (result.done === true) {
      if (this.endsCall) this.call.end(ok);
    } else {
      countOne(this.call.stats, this.outgoing);
    }
    return result;
  };

  private readonly onError = (e: unknown): never => {
    if (this.endsCall) this.call.end(this.call.errorCode(e));
    throw e;
  };
}
