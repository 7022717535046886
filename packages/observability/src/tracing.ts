import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import {
  type Attributes,
  type Context,
  context,
  createContextKey,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import {
  defaultResource,
  detectResources,
  envDetector,
  hostDetector,
  osDetector,
  processDetector,
  resourceFromAttributes,
  serviceInstanceIdDetector,
} from "@opentelemetry/resources";
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  SamplingDecision,
  type SamplingResult,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";

export interface TracingOptions {
  /** The `service.name` of the spans. */
  serviceName: string;
  /**
   * Where to send spans: an OTLP/HTTP (protobuf) traces endpoint such as
   * `http://otel-collector:4318/v1/traces`. Default: none — trace context is still propagated
   * and logged, spans are not exported.
   */
  endpoint?: string;
  /** The share of new traces to sample, 0 to 1. Default 0.1. A caller's sampled trace is always followed. */
  samplingRatio?: number;
  /** More span processors (for example an in-memory exporter in tests). */
  spanProcessors?: SpanProcessor[];
}

export interface Tracing {
  /** Changes the sampling ratio of new traces from now on (for a configuration reload). */
  setSamplingRatio(ratio: number): void;
  /** Exports what is pending and stops. */
  shutdown(): Promise<void>;
}

/**
 * Starts OpenTelemetry tracing for the process: the tracer provider with parent-based ratio
 * sampling and an OTLP exporter when an endpoint is given, an AsyncLocalStorage context manager,
 * W3C `traceparent` and `baggage` propagation, and the resource `@opentelemetry/sdk-node` would
 * detect (service, process, host, OS, OTEL_RESOURCE_ATTRIBUTES). Built from those parts rather
 * than with sdk-node, which loads the exporters, metrics and logs SDKs of every protocol: 6 MiB
 * more heap and about 19 MiB more resident memory for a server that uses none of them. The
 * interceptors below then create the spans.
 */
export function startTracing(options: TracingOptions): Tracing {
  const ratio = new AdjustableRatioSampler(options.samplingRatio ?? 0.1);
  const processors: SpanProcessor[] = [
    ...(options.endpoint === undefined
      ? []
      : [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: options.endpoint }) })]),
    ...(options.spanProcessors ?? []),
  ];
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(
    new CompositePropagator({
      propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
    }),
  );
  const resource = defaultResource()
    .merge(
      detectResources({
        detectors: [
          serviceInstanceIdDetector,
          processDetector,
          hostDetector,
          osDetector,
          envDetector,
        ],
      }),
    )
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName }));
  const provider = new TracerProvider({
    sampler: new ParentBasedSampler({ root: ratio }),
    resource,
    spanProcessors: processors,
  });
  trace.setGlobalTracerProvider(provider);
  newTraces = ratio;
  return {
    setSamplingRatio: (value) => ratio.set(value),
    shutdown: async () => {
      if (newTraces === ratio) newTraces = undefined;
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}

/**
 * Whether a new trace is sampled, decided by the server interceptor before any span is made (see
 * `createTracingInterceptor`): set in the context its span starts in, it wins over the ratio.
 */
const newTraceSampled = createContextKey("keel new trace sampled");
const sampledNewTrace = ROOT_CONTEXT.setValue(newTraceSampled, true);
const unsampledNewTrace = ROOT_CONTEXT.setValue(newTraceSampled, false);

/** The sampler of new traces of the tracing `startTracing` started; undefined when none runs. */
let newTraces: AdjustableRatioSampler | undefined;

/** A trace-id ratio sampler whose ratio can change while the process runs. */
class AdjustableRatioSampler implements Sampler {
  private sampler: TraceIdRatioBasedSampler;
  private ratio: number;

  constructor(ratio: number) {
    this.ratio = ratio;
    this.sampler = new TraceIdRatioBasedSampler(ratio);
  }

  set(ratio: number): void {
    this.ratio = ratio;
    this.sampler = new TraceIdRatioBasedSampler(ratio);
  }

  /** Decides now whether a new trace is sampled, at the ratio, before it has an id. */
  sampleNew(): boolean {
    return this.ratio >= 1 || (this.ratio > 0 && Math.random() < this.ratio);
  }

  shouldSample(ctx: Context, traceId: string): SamplingResult {
    const decided = ctx.getValue(newTraceSampled);
    if (decided === true) return { decision: SamplingDecision.RECORD_AND_SAMPLED };
    if (decided === false) return { decision: SamplingDecision.NOT_RECORD };
    return this.sampler.shouldSample(ctx, traceId);
  }

  toString(): string {
    return `AdjustableRatioSampler{${this.sampler.toString()}}`;
  }
}

export interface TracingInterceptorOptions {
  /** Default: the global tracer provider's tracer "@keel/observability". */
  tracer?: Tracer;
}

const headerGetter: TextMapGetter<Headers> = {
  keys: (headers) => [...headers.keys()],
  get: (headers, key) => headers.get(key) ?? undefined,
};
const headerSetter: TextMapSetter<Headers> = {
  set: (headers, key, value) => headers.set(key, value),
};

/** gRPC's OK, which connect's Code enum leaves out. */
const ok = 0;

// OpenTelemetry's RPC conventions: for a server, only these codes mean the server failed.
const serverErrors = new Set([
  Code.Unknown,
  Code.DeadlineExceeded,
  Code.Unimplemented,
  Code.Internal,
  Code.Unavailable,
  Code.DataLoss,
]);

/**
 * A server span per traced call, named `package.Service/Method`, continuing the caller's trace from
 * its `traceparent` and `baggage` headers (a new trace that is not sampled gets none), with the RPC attributes (`rpc.system`, `rpc.service`,
 * `rpc.method`, `rpc.grpc.status_code`) and server errors recorded. The handler, including a
 * streaming one, runs in the span's context, so outgoing calls become its children and log lines
 * can carry its ids.
 */
export function createTracingInterceptor(options: TracingInterceptorOptions = {}): Interceptor {
  const tracer = options.tracer ?? trace.getTracer("@keel/observability");
  const own = options.tracer === undefined;
  return (next) => (req) => {
    let parent: Context;
    // A new trace (no caller's context) of the tracing `startTracing` runs is decided here: one it
    // does not sample gets no span at all (an unsampled span records nothing, yet costs its
    // objects), only a context in which what it calls out is not sampled either.
    const sampler = own ? newTraces : undefined;
    if (sampler !== undefined && !req.header.has("traceparent") && !req.header.has("baggage")) {
      if (!sampler.sampleNew()) {
        // A listener started by `serveInUnsampledTraces` runs every call there already.
        return context.active() === unsampledNewTrace
          ? next(req)
          : context.with(unsampledNewTrace, next, undefined, req);
      }
      parent = sampledNewTrace;
    } else {
      parent = propagation.extract(ROOT_CONTEXT, req.header, headerGetter);
    }
    const span = startRpcSpan(tracer, serverSpan, req, parent);
    return finishWith(span, trace.setSpan(parent, span), isServerError, next, req);
  };
}

/**
 * Runs `start` — a server's `listen` — in the context of a new trace that is not sampled, which
 * every call that server serves then starts in (Node carries it from the listening socket to its
 * connections, streams and what they await): the tracing interceptor gives an unsampled call no
 * context of its own, where it would otherwise enter one per call (an `AsyncLocalStorage` frame
 * and a copy of a `Map` per call). A sampled call, or one whose caller sent its trace,
 * gets its own context as before. Start tracing (`startTracing`) first.
 */
export function serveInUnsampledTraces<T>(start: () => T): T {
  return context.with(unsampledNewTrace, start);
}

/**
 * A client span per outgoing call, a child of whatever span is active (for example the server
 * span of the call being handled), with `traceparent` and `baggage` sent in the request headers.
 */
export function createClientTracingInterceptor(
  options: TracingInterceptorOptions = {},
): Interceptor {
  const tracer = options.tracer ?? trace.getTracer("@keel/observability");
  return (next) => (req) => {
    const span = startRpcSpan(tracer, clientSpan, req, context.active());
    const ctx = trace.setSpan(context.active(), span);
    propagation.inject(ctx, req.header, headerSetter);
    return finishWith(span, ctx, isClientError, next, req);
  };
}

const serverSpan = { kind: SpanKind.SERVER };
const clientSpan = { kind: SpanKind.CLIENT };
const isServerError = (code: Code | typeof ok) => code !== ok && serverErrors.has(code);
const isClientError = (code: Code | typeof ok) => code !== ok;

/**
 * A span named after the call's method, with the RPC attributes. They are set once the sampler
 * has decided, on spans that record only: given at start, the SDK would copy and check them for
 * every call, sampled or not (the samplers here do not look at attributes).
 */
function startRpcSpan(
  tracer: Tracer,
  options: SpanOptions,
  req: { method: DescMethod; header: Headers },
  parent: Context,
): Span {
  const names = methodSpan(req.method);
  const span = tracer.startSpan(names.name, options, parent);
  if (span.isRecording()) {
    const grpc = req.header.get("content-type")?.startsWith("application/grpc") ?? false;
    span.setAttributes(grpc ? names.grpc : names.connect);
  }
  return span;
}

/** Ends `span` with the call's outcome: its gRPC status code, and the error when `isError` says so. */
function endSpan(span: Span, isError: (code: Code | typeof ok) => boolean, err?: unknown): void {
  const code = err === undefined ? ok : ConnectError.from(err).code;
  span.setAttribute("rpc.grpc.status_code", code);
  if (err !== undefined && isError(code)) {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: ConnectError.from(err).rawMessage });
  }
  span.end();
}

/**
 * Runs `next(req)` in the span's context and ends the span when the call is over, streams
 * included (the interceptor's own async step: one per call).
 */
async function finishWith<Req, R extends { stream: boolean; message: unknown }>(
  span: Span,
  ctx: Context,
  isError: (code: Code | typeof ok) => boolean,
  next: (req: Req) => Promise<R>,
  req: Req,
): Promise<R> {
  let res: R;
  try {
    res = await context.with(ctx, next, undefined, req);
  } catch (err) {
    endSpan(span, isError, err);
    throw err;
  }
  if (!res.stream) {
    endSpan(span, isError);
    return res;
  }
  const end = (err?: unknown) => endSpan(span, isError, err);
  return { ...res, message: bound(ctx, res.message as AsyncIterable<unknown>, end) };
}

/**
 * The stream, each step of it taken in `ctx`, ending the span when it ends however it ends:
 * completed, failed, or given up by the consumer (a client that cancelled), which is passed on.
 * An iterator of its own rather than an async generator: a generator costs a promise and a
 * resumption more for every message.
 */
function bound<T>(
  ctx: Context,
  stream: AsyncIterable<T>,
  end: (err?: unknown) => void,
): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const it = stream[Symbol.asyncIterator]();
      let ended = false;
      const finish = (err?: unknown) => {
        if (ended) return;
        ended = true;
        end(err);
      };
      const onStep = (step: IteratorResult<T>) => {
        if (step.done === true) finish();
        return step;
      };
      const onError = (err: unknown): never => {
        finish(err);
        throw err;
      };
      return {
        next: () => {
          try {
            return context.with(ctx, it.next, it).then(onStep, onError);
          } catch (err) {
            finish(err);
            return Promise.reject(err);
          }
        },
        return: (value?: unknown) => {
          finish();
          return it.return?.(value) ?? Promise.resolve({ done: true as const, value: value as T });
        },
        throw: (err?: unknown) => {
          finish(err);
          return it.throw?.(err) ?? Promise.reject(err);
        },
      };
    },
  };
}

/** A method's span name and its span attributes for each RPC system, built once per method. */
interface MethodSpan {
  name: string;
  grpc: Attributes;
  connect: Attributes;
}

const methodSpans = new WeakMap<DescMethod, MethodSpan>();

function methodSpan(method: DescMethod): MethodSpan {
  let found = methodSpans.get(method);
  if (found === undefined) {
    const of = (system: string): Attributes =>
      Object.freeze({
        "rpc.system": system,
        "rpc.service": method.parent.typeName,
        "rpc.method": method.name,
      });
    found = {
      name: `${method.parent.typeName}/${method.name}`,
      grpc: of("grpc"),
      connect: of("connect_rpc"),
    };
    methodSpans.set(method, found);
  }
  return found;
}
