import type {
  DescMessage,
  DescMethodStreaming,
  DescMethodUnary,
  MessageInitShape,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextValues,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { createMethodUrl, runStreamingCall, runUnaryCall } from "@connectrpc/connect/protocol";
import type { ClientMetrics, ClientMetricsOptions } from "@keel/observability";
import { createBalancingTransport, type EndpointStatus } from "./balancer.ts";
import { createBearerTokenInterceptor } from "./bearer-token.ts";
import type { CircuitBreakerOptions } from "./circuit-breaker.ts";
import { createClientEndpoint } from "./client-endpoint.ts";
import type { NameResolutionOptions } from "./dns-resolver.ts";
import type { BalancingPolicy } from "./pickers.ts";
import {
  createRequestIdPropagationInterceptor,
  type RequestIdPropagationOptions,
} from "./request-id.ts";
import { resolveEndpoints } from "./resolved-endpoints.ts";
import { createRetryTransport, type RetryOptions } from "./retry.ts";
import { parseTarget, type Target } from "./target.ts";
import type { TransportOptions } from "./transport.ts";
import type { WeightedRoundRobinOptions } from "./weighted-round-robin.ts";

/** What a call's headers may be given as. */
type HeadersInit = ConstructorParameters<typeof Headers>[0];

/** Options of `createClientTransport`, `createUserClient` and `createOrderClient`. */
export interface ClientOptions extends Omit<TransportOptions, "baseUrl"> {
  /**
   * The service's endpoints: URLs, for example `["http://10.0.0.1:9090", "http://10.0.0.2:9090"]`,
   * or gRPC DNS targets such as `dns:///users.internal:9090`, whose every A and AAAA record is an
   * endpoint (over https when `tls` is set), resolved again as `nameResolution` says.
   */
  endpoints?: string[];
  /** One endpoint: the same as `endpoints: [baseUrl]`. Set this or `endpoints`. */
  baseUrl?: string;
  /** How calls are spread over the endpoints; see `BalancingPolicy`. Default "round_robin". */
  balancing?: BalancingPolicy;
  /**
   * When `dns:` endpoints are resolved again: every `refreshIntervalMs` (default 30000), and
   * when a connection fails, at most once per `minIntervalMs` (default 30000); `resolver` sets
   * the DNS client. See `NameResolutionOptions`.
   */
  nameResolution?: NameResolutionOptions;
  /**
   * The `weighted_round_robin` policy's blackout, expiration and update periods and error
   * penalty; see `WeightedRoundRobinOptions` for each default (grpc-go's).
   */
  weightedRoundRobin?: WeightedRoundRobinOptions;
  /** Retries of idempotent calls; see `RetryOptions` for each default. false: no retries at all. */
  retry?: RetryOptions | false;
  /** A circuit breaker per endpoint; see `CircuitBreakerOptions` for each default. false: none. */
  circuitBreaker?: Omit<CircuitBreakerOptions, "now"> | false;
  /**
   * Watch each endpoint's grpc.health.v1 status and keep it out of the rotation while it is not
   * SERVING. A server without health checking is taken as healthy. `service` is the name
   * watched: default "" (the whole server), or the service's name for `createUserClient` and
   * `createOrderClient`. Default: on with several endpoints (or a `dns:` one) over HTTP/2, off
   * otherwise.
   */
  healthCheck?: boolean | { service?: string };
  /** Backoff between attempts to reconnect to a failed endpoint or to restart its health Watch. */
  reconnectBackoff?: {
    /** The first delay, in ms; it grows 1.6× per failure, with ±20% jitter. Default 1000. */
    initialMs?: number;
    /** The longest delay, in ms. Default 10000. */
    maxMs?: number;
  };
  /**
   * Record go-grpc-middleware's client metrics (`grpc_client_started_total` and so on) of every
   * call, once per call however many attempts it takes: in `registry` (clients given the same
   * registry share one set of metrics), or through an existing `createClientMetrics()` result.
   * Default: none.
   */
  metrics?: ClientMetrics | (Pick<ClientMetricsOptions, "services"> & { registry: Registry });
  /**
   * Start an OpenTelemetry client span per call, a child of the active span, and send its
   * `traceparent`. Default false.
   */
  tracing?: boolean;
  /**
   * Send an `x-request-id` with every call that has none: a new UUID, or what `get` returns (the
   * id of the request being served, to follow it through services). The same id goes with every
   * attempt of a call. Default false: the call's own header only, so that a proxy or the server
   * can assign ids.
   */
  requestId?: boolean | RequestIdPropagationOptions;
}

/** prom-client's registry, as `@keel/observability` takes it. */
type Registry = NonNullable<ClientMetricsOptions["registry"]>;

/** A transport over several endpoints, with its diagnostics and lifetime. */
export interface ClientTransport extends Transport {
  /** Each endpoint's state now, in configuration order. */
  endpoints(): EndpointStatus[];
  /**
   * Stops health checking and reconnecting, and closes the connections; calls in flight fail.
   * A client need not be closed for the process to exit.
   */
  close(): void;
}

const sharedMetrics = new WeakMap<Registry, Promise<ClientMetrics>>();

/**
 * `@keel/observability`, loaded only by a client that asks for metrics or tracing: it brings
 * prom-client and the OpenTelemetry SDK and exporters (hundreds of modules), which a client
 * without them should not pay for at import.
 */
function observability() {
  return import("@keel/observability");
}

/**
 * An interceptor made once `make` resolves, which it starts doing now; each call waits for it
 * (once loaded, a resolved promise), so the first calls are observed too.
 */
function deferredInterceptor(make: Promise<Interceptor>): Interceptor {
  // A load failure surfaces in every call, not as an unhandled rejection at creation.
  make.catch(() => {});
  return (next) => {
    let wrapped: ReturnType<Interceptor> | undefined;
    return async (req) => {
      wrapped ??= (await make)(next);
      return wrapped(req);
    };
  };
}

/**
 * The transport of keel's clients: calls go through the interceptors (tracing, metrics, request
 * id, token, then `interceptors`) once per call, then through retries, each attempt to an
 * endpoint chosen by the balancing policy among those whose health and circuit breaker allow it.
 * The call's deadline (`timeoutMs`, or the call's own) covers all of its attempts and backoffs.
 *
 * Share one transport between clients of services served by the same endpoints (keel serves
 * both on one port): they then share connections, health, circuit breakers and retry budget.
 *
 * ```ts
 * const transport = createClientTransport({
 *   endpoints: ["http://keel-0:9090", "http://keel-1:9090", "http://keel-2:9090"],
 *   token,
 * });
 * const users = createClient(UserService, transport);
 * const orders = createClient(OrderService, transport);
 * ```
 */
export function createClientTransport(options: ClientOptions): ClientTransport {
  const entries = options.endpoints ?? (options.baseUrl === undefined ? [] : [options.baseUrl]);
  if (entries.length === 0) {
    throw new Error("set endpoints (or baseUrl) to the service's addresses");
  }
  const targets = entries.map(parseTarget);
  const healthCheck = options.healthCheck ?? healthCheckByDefault(options);
  const healthService =
    healthCheck === false
      ? false
      : typeof healthCheck === "object"
        ? (healthCheck.service ?? "")
        : "";
  const balancer = createBalancingTransport({
    endpoints: [],
    ...(options.balancing === undefined ? {} : { policy: options.balancing }),
    ...(options.weightedRoundRobin === undefined
      ? {}
      : { weightedRoundRobin: options.weightedRoundRobin }),
  });
  const resolution = resolveEndpoints({
    targets,
    tls: options.tls !== undefined,
    balancer,
    ...(options.nameResolution === undefined ? {} : { resolution: options.nameResolution }),
    make: (url, resolved) =>
      createClientEndpoint(url, {
        ...options,
        healthService,
        ...(resolved === undefined
          ? {}
          : {
              tls: { servername: resolved.servername, ...options.tls },
              onConnectionFailed: resolved.onConnectionFailed,
            }),
      }),
  });
  const inner =
    options.retry === false ? balancer : createRetryTransport(balancer, options.retry ?? {});
  const interceptors = callInterceptors(options);
  const defaultTimeoutMs = options.timeoutMs ?? 10_000;
  // The URL the interceptors see (`req.url`); each attempt goes to the endpoint chosen for it.
  const first = targets[0] as Target;
  const baseUrl =
    first.kind === "static"
      ? first.url
      : `${options.tls === undefined ? "http" : "https"}://${first.host}:${first.port}`;

  /** The call's deadline as an absolute time, and as the timeout to hand to runUnaryCall. */
  const deadlineOf = (timeoutMs: number | undefined) => {
    const ms = timeoutMs ?? defaultTimeoutMs;
    return ms > 0
      ? { timeoutMs: ms, at: Date.now() + ms }
      : { timeoutMs: undefined, at: undefined };
  };
  /** What is left of the deadline once the interceptors have run. */
  const remaining = (at: number | undefined) => {
    if (at === undefined) return undefined;
    const left = at - Date.now();
    if (left <= 0)
      throw new ConnectError("the deadline passed before the call was sent", Code.DeadlineExceeded);
    return left;
  };

  return {
    unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      message: MessageInitShape<I>,
      contextValues?: ContextValues,
    ) {
      const deadline = deadlineOf(timeoutMs);
      return runUnaryCall<I, O>({
        interceptors,
        signal,
        timeoutMs: deadline.timeoutMs,
        req: {
          stream: false,
          service: method.parent,
          method,
          requestMethod: "POST",
          url: createMethodUrl(baseUrl, method),
          header: new Headers(header),
          contextValues: contextValues ?? createContextValues(),
          message,
        },
        next: async (req) =>
          inner.unary(
            req.method,
            req.signal,
            remaining(deadline.at),
            req.header,
            req.message,
            req.contextValues,
          ),
      });
    },

    stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: AsyncIterable<MessageInitShape<I>>,
      contextValues?: ContextValues,
    ) {
      const deadline = deadlineOf(timeoutMs);
      return runStreamingCall<I, O>({
        interceptors,
        signal,
        timeoutMs: deadline.timeoutMs,
        req: {
          stream: true,
          service: method.parent,
          method,
          requestMethod: "POST",
          url: createMethodUrl(baseUrl, method),
          header: new Headers(header),
          contextValues: contextValues ?? createContextValues(),
          message: input,
        },
        next: async (req) =>
          inner.stream(
            req.method,
            req.signal,
            remaining(deadline.at),
            req.header,
            req.message,
            req.contextValues,
          ),
      });
    },

    endpoints: () => balancer.endpoints(),
    close() {
      resolution.close();
      balancer.close();
    },
  };
}

function metricsInterceptor(metrics: NonNullable<ClientOptions["metrics"]>): Interceptor {
  if ("interceptor" in metrics) return metrics.interceptor;
  // prom-client refuses a second metric of the same name in a registry: one set per registry.
  let shared = sharedMetrics.get(metrics.registry);
  if (shared === undefined) {
    if (metrics.registry.getSingleMetric("grpc_client_started_total") !== undefined) {
      throw new Error(
        "the registry has client metrics already: pass the createClientMetrics() result that made them as `metrics`",
      );
    }
    shared = observability().then(({ createClientMetrics }) => createClientMetrics(metrics));
    sharedMetrics.set(metrics.registry, shared);
  }
  return deferredInterceptor(shared.then((m) => m.interceptor));
}

/** Health checking is on by default with several endpoints (or a DNS name) over HTTP/2. */
function healthCheckByDefault(options: ClientOptions): boolean {
  const entries = options.endpoints ?? (options.baseUrl === undefined ? [] : [options.baseUrl]);
  const several = entries.length > 1 || entries.some((entry) => entry.startsWith("dns:"));
  return several && (options.httpVersion ?? "2") === "2";
}

/** The options, with health checks (if they are on) watching `service` unless they name one. */
export function withHealthService(options: ClientOptions, service: string): ClientOptions {
  const { healthCheck = healthCheckByDefault(options) } = options;
  if (
    healthCheck === false ||
    (typeof healthCheck === "object" && healthCheck.service !== undefined)
  ) {
    return options;
  }
  return { ...options, healthCheck: { service } };
}

/** The interceptors every call passes once, outermost first. */
function callInterceptors(options: ClientOptions): Interceptor[] {
  const interceptors: Interceptor[] = [];
  // Tracing outermost, so that metrics see its span (for exemplars) and it sees everything.
  if (options.tracing === true) {
    interceptors.push(
      deferredInterceptor(observability().then((o) => o.createClientTracingInterceptor())),
    );
  }
  if (options.metrics !== undefined) interceptors.push(metricsInterceptor(options.metrics));
  const requestId = options.requestId ?? false;
  if (requestId !== false) {
    interceptors.push(createRequestIdPropagationInterceptor(requestId === true ? {} : requestId));
  }
  if (options.token !== undefined) interceptors.push(createBearerTokenInterceptor(options.token));
  interceptors.push(...(options.interceptors ?? []));
  return interceptors;
}
