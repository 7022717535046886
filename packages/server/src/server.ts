import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { type ConnectRouter, createClient, type Interceptor } from "@connectrpc/connect";
import { contentTypeRegExp as grpcContentType } from "@connectrpc/connect/protocol-grpc";
import { compressionBrotli, compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import { createUserClient } from "@keel/clients";
import { createConsoleHandler, createCorsHandler } from "@keel/console";
import { createCallValues, createEngine } from "@keel/engine";
import {
  Health,
  HealthCheckResponse_ServingStatus as Serving,
} from "@keel/gen/health/v1/health_pb";
import { OrderService } from "@keel/gen/order/v1/order_pb";
import { UserService } from "@keel/gen/user/v1/user_pb";
import {
  type AuditLog,
  type ClientAddressOptions,
  callProgressKey,
  createAuditInterceptor,
  createAuthenticationInterceptor,
  createAuthorizationInterceptor,
  createBoundedErrorsInterceptor,
  createClientAddressResolver,
  createDeadlineInterceptor,
  createHs256Keyring,
  createIpAccess,
  createLoadReporter,
  createLoggingInterceptor,
  createOidcVerifier,
  createPolicyResolver,
  createRateLimiter,
  createRecoveryInterceptor,
  createRefusalSummary,
  createRequestIdInterceptor,
  createSharedBuckets,
  createStreamLimitInterceptor,
  createValidationInterceptor,
  deadlineDefaults,
  deadlineKey,
  defaultDeadlineExpired,
  type Hs256Keys,
  type IncomingHeaders,
  type IpAccess,
  type IpRules,
  type LoadReporterOptions,
  type OidcVerifierOptions,
  peerKey,
  type RateLimiter,
  type RateLimits,
  type RefusalSummary,
  type SharedBucketsOptions,
  type StreamLimitOptions,
  shedReasons,
} from "@keel/interceptors";
import {
  createClientMetrics,
  createClientTracingInterceptor,
  createHealthService,
  createMetricsHandler,
  createRefusalMetrics,
  createServerMetrics,
  createShedMetrics,
  createTracingInterceptor,
  registerReflection,
  serveInUnsampledTraces,
  takeProfile,
} from "@keel/observability";
import { createRestHandler, readOpenApiDocument } from "@keel/rest";
import type { Store } from "@keel/store";
import type { JSONWebKeySet } from "jose";
import type { Logger } from "pino";
import { createAccountGuard } from "./account-guard.ts";
import { startAdminServer } from "./admin-server.ts";
import { apiKeyRequestSchemas } from "./api-key-schemas.ts";
import { createApiKeyVerifier } from "./api-key-verifier.ts";
import { apiKeyPrefix } from "./api-keys.ts";
import { shuttingDown } from "./errors.ts";
import { createHealthConditions, type HealthConditions } from "./health-conditions.ts";
import { type Http2Limits, type Listener, listen, type TlsOptions } from "./listener.ts";
import {
  createLoadProtection,
  type LoadProtectionOptions,
  type LoadSheddingOptions,
} from "./load-protection.ts";
import { orderNotFound } from "./order-handlers.ts";
import { createOrderOwners } from "./order-owners.ts";
import { orderRequestSchemas } from "./order-schemas.ts";
import { createOrderService } from "./order-service.ts";
import { createPasswordHasher, type PasswordHasherOptions } from "./passwords.ts";
import { createProfileEndpoint, ProfileRequestError } from "./profile-endpoint.ts";
import { registerStoreMetrics } from "./store-metrics.ts";
import { createTokenIssuer, type TokenIssuerOptions } from "./tokens.ts";
import { createUserDirectory } from "./user-directory.ts";
import { userRequestSchemas } from "./user-schemas.ts";
import { createUserService } from "./user-service.ts";

export interface ServerOptions {
  /** The address to listen on; default "0.0.0.0". */
  host?: string;
  /** The port for gRPC, gRPC-Web and Connect; 0 picks a free one. Default 9090. */
  port?: number;
  /**
   * The port for /metrics, /healthz and /readyz; 0 picks a free one; null serves none (a cluster
   * worker: its primary serves them for all workers). Default 9091.
   */
  adminPort?: number | null;
  /** Serve TLS, and mutual TLS with a client CA. Default: plaintext. */
  tls?: TlsOptions;
  /** HTTP/2 connection limits: concurrent streams, keepalive pings, idle timeout, maximum age. */
  http2?: Http2Limits;
  /** Where users, credentials, activities and orders live. Closed by `close()`. */
  store: Store;
  /**
   * How tokens are issued (Login, RefreshToken) and verified: the HS256 secret, issuer, audience
   * and lifetimes. With `jwks`, RS256/ES256 access tokens of another issuer are accepted too.
   */
  tokens: TokenIssuerOptions & {
    jwks?: JSONWebKeySet | URL;
    /**
     * HS256 keys besides `secret` whose tokens are accepted, though they sign nothing (see
     * `Hs256Keys.accepted`); with a keyring as `secret`, the keyring's. Default none.
     */
    acceptedSecrets?: readonly Uint8Array[];
  };
  /**
   * Also accept access tokens of this OpenID Connect issuer, with its audience and role mapping
   * (see `createOidcVerifier`). Its discovery document and keys are fetched at start, and a
   * problem logged; calls with its tokens fail UNAVAILABLE while it cannot be reached. Default none.
   */
  oidc?: OidcVerifierOptions;
  /**
   * The HMAC key API keys are hashed with (at least 32 bytes), the same on every instance.
   * Default: API keys are off (CreateApiKey answers FAILED_PRECONDITION, keys are refused).
   */
  apiKeySecret?: Uint8Array;
  /**
   * Token buckets per caller and method. Default: 100/s with bursts of 200; Login and CreateUser
   * 10/min per client address, bursts of 5.
   */
  rateLimits?: RateLimits;
  /**
   * Rate limits shared by every instance and worker through a token source (PostgreSQL's
   * `openPostgresTokenBuckets`), reserved in batches. Default: each process counts for itself.
   */
  sharedRateLimits?: SharedBucketsOptions;
  /**
   * Streaming calls open at once per authenticated caller and per address (anonymous calls).
   * Default: 100 per caller, 200 per address.
   */
  streamLimits?: StreamLimitOptions;
  /** The deadline of unary and client-streaming calls that set none, in ms. Default 30000. */
  defaultTimeoutMs?: number;
  /** log2 of the scrypt cost for password hashes; default 15. */
  passwordCost?: number;
  /** How password hashing is shared between client addresses; see `PasswordHasherOptions.queue`. */
  passwordHashing?: PasswordHasherOptions["queue"];
  /**
   * How long a user's status is trusted before it is read again, in ms: the longest a suspension
   * made elsewhere takes to stop the user's tokens here. Default 2000.
   */
  accountStatusMaxAgeMs?: number;
  /**
   * Where OrderService finds UserService, for example `http://users.internal:9090`.
   * Default: this server itself.
   */
  userServiceUrl?: string;
  /** TLS of an https:// `userServiceUrl`: the CA to trust, and a client certificate and key. */
  userServiceTls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /**
   * What serves the calls: keel's engine (`keel`), or connect-node's adapter for every protocol
   * (`connect`), for comparison and as an escape hatch. Default `keel`.
   */
  engine?: "keel" | "connect";
  /** Serve the API console at /console. Default false. */
  console?: boolean;
  /** Origins whose pages may call the API from a browser (CORS). Default none. */
  corsAllowedOrigins?: string[];
  /** How often the database is checked for health reporting, in ms. Default 5000. */
  healthCheckIntervalMs?: number;
  /** Largest message accepted or sent, in bytes; default 4 MiB. */
  maxMessageBytes?: number;
  /**
   * Request bytes held while bodies are read, per connection and per process, and how long a body
   * may stall; default the engine's (16 MiB, 256 MiB, 30 s).
   */
  requestBodies?: {
    bufferedBytesPerConnection: number;
    bufferedBytesPerProcess: number;
    idleTimeoutMs: number;
  };
  /** Where calls that change state are recorded (see `(policy.v1.method).audit`). Default: nowhere. */
  auditLog?: Pick<AuditLog, "write">;
  /**
   * The proxies in front of the server, whose forwarding header names the client: its address is
   * then the one rate limits, audit and logs see (`peerKey`). Default: none, the socket's address.
   */
  clientAddress?: ClientAddressOptions;
  /**
   * Client addresses (as `clientAddress` yields them) allowed and denied, globally and per method;
   * refused calls answer PERMISSION_DENIED and are audited. Default: every address allowed.
   */
  ipAccess?: IpRules;
  /**
   * Serve CPU and heap profiles of this process on the admin port to admin tokens, recordings of
   * at most `maxSeconds`. Default: not served.
   */
  profiling?: { maxSeconds: number };
  /**
   * Refused calls (RESOURCE_EXHAUSTED, UNAUTHENTICATED, PERMISSION_DENIED) are logged one per
   * method and code in each interval of this many ms, the rest counted into one summary line at
   * its end (and written at debug only); 0: one line each. Default 10000.
   */
  refusalSummaryIntervalMs?: number;
  /**
   * Send an ORCA load report (`endpoint-load-metrics-bin`) with every response, for clients'
   * `weighted_round_robin`; the report is rebuilt every `intervalMs` (default 1000), from the
   * samples of load protection's sampler when shedding or memory limits are on. false: none.
   * Default: on.
   */
  loadReports?: Pick<LoadReporterOptions, "intervalMs"> | false;
  /**
   * Refuse new calls (RESOURCE_EXHAUSTED with a retry delay, before any work) while the event
   * loop is overloaded; health and admin calls still pass. Default: never for load.
   */
  loadShedding?: LoadSheddingOptions;
  /**
   * Heap and RSS limits in bytes: above a soft limit new calls are shed, above a hard one health
   * reports NOT_SERVING. Default: none.
   */
  memoryLimits?: LoadProtectionOptions["memory"];
  /** How often load and memory are sampled, in ms. Default 100. */
  loadSampleIntervalMs?: number;
  logger: Logger;
}

export interface RunningServer {
  readonly port: number;
  /** The admin port; undefined when there is none. */
  readonly adminPort: number | undefined;
  /** The registry holding the server's metrics (and its calls' client metrics). */
  readonly metricsRegistry: ReturnType<typeof createServerMetrics>["registry"];
  /** Health of the whole server ("") and of each service, as grpc.health.v1 reports it. */
  readonly health: ReturnType<typeof createHealthService>;
  /** The base URL clients use, for example `http://127.0.0.1:9090`. */
  readonly url: string;
  /** Applies new rate limits to calls from now on. */
  readonly rateLimiter: RateLimiter;
  /** How refused calls are logged; `setIntervalMs` applies a new `refusalSummaryIntervalMs`. */
  readonly refusals: Pick<RefusalSummary, "setIntervalMs">;
  /**
   * Serves another certificate, key and client CA to new connections (open ones keep theirs).
   * Check them first (`readTlsMaterial`): a key that is not the certificate's makes every new
   * handshake fail. Throws on a plaintext server.
   */
  setTls(tls: TlsOptions): void;
  /**
   * Rotates keel's own HS256 keys: `current` signs tokens from now on, it and `accepted` verify
   * them (tokens signed with a key no longer listed are refused). Throws on a key too short.
   */
  setSigningKeys(keys: Hs256Keys): void;
  /** Applies new IP allow and deny lists to calls from now on. */
  readonly ipAccess: IpAccess;
  /**
   * Stops the server: health turns NOT_SERVING, it goes on serving for `delayMs` (default 0) so
   * that load balancers notice, then takes no new connections, sends GOAWAY, ends open streams
   * with UNAVAILABLE and gives calls in flight `graceMs` (default 10 s) to finish; then the
   * admin port and the store are closed.
   */
  close(options?: { graceMs?: number; delayMs?: number }): Promise<void>;
}

/** Default limits: generous for one caller, strict for password guessing. */
const defaultRateLimits: RateLimits = {
  default: { ratePerSecond: 100, burst: 200 },
  methods: {
    "user.v1.UserService/Login": { ratePerSecond: 10 / 60, burst: 5 },
    "user.v1.UserService/CreateUser": { ratePerSecond: 10 / 60, burst: 5 },
  },
};

/** Starts serving UserService and OrderService over gRPC, gRPC-Web and Connect on one port. */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { store, logger } = options;
  const shutdown = new AbortController();
  const maxMessageBytes = options.maxMessageBytes ?? 4 * 1024 * 1024;
  const keyring =
    options.tokens.secret instanceof Uint8Array
      ? createHs256Keyring({
          current: options.tokens.secret,
          accepted: options.tokens.acceptedSecrets ?? [],
        })
      : options.tokens.secret;
  const tokens = createTokenIssuer({ ...options.tokens, secret: keyring });
  const oidc = options.oidc === undefined ? undefined : createOidcVerifier(options.oidc);
  const accounts = createAccountGuard({
    user: (userId) => store.users.get(userId),
    session: (sessionId) => store.refreshTokens.familyActive(sessionId, new Date()),
    issuer: tokens.issuer,
    ...(options.accountStatusMaxAgeMs === undefined
      ? {}
      : { maxAgeMs: options.accountStatusMaxAgeMs }),
  });
  const apiKeys =
    options.apiKeySecret === undefined
      ? undefined
      : createApiKeyVerifier({
          keys: store.apiKeys,
          secret: options.apiKeySecret,
          // Revoked keys are refused everywhere as soon as suspended users are.
          ...(options.accountStatusMaxAgeMs === undefined
            ? {}
            : { maxAgeMs: options.accountStatusMaxAgeMs }),
          onTouchError: (err) => logger.warn({ err }, "cannot record an API key's last use"),
        });
  const userService = createUserService({
    store,
    passwords: createPasswordHasher({
      cost: options.passwordCost ?? 15,
      ...(options.passwordHashing === undefined ? {} : { queue: options.passwordHashing }),
    }),
    tokens,
    accounts,
    apiKeySecret: options.apiKeySecret,
    apiKeys,
  });
  const metrics = createServerMetrics({ services: [UserService, OrderService, Health] });
  registerStoreMetrics(metrics.registry, store);
  const clientMetrics = createClientMetrics({
    registry: metrics.registry,
    services: [UserService],
  });
  let selfUrl = "";
  // OrderService checks users through UserService: in this process through the engine (the same
  // interceptor chain a network call gets, no socket, no TLS), or at KEEL_USER_SERVICE_URL.
  const userServiceUrl = options.userServiceUrl;
  const clientInterceptors = [createClientTracingInterceptor(), clientMetrics.interceptor];
  const orderService = createOrderService(
    store,
    createUserDirectory({
      where: userServiceUrl ?? "in-process",
      logger,
      connect: () =>
        userServiceUrl === undefined
          ? createClient(
              UserService,
              engine.inProcessTransport({
                interceptors: clientInterceptors,
                peer: (values) => values.get(peerKey),
              }),
            )
          : createUserClient({
              baseUrl: userServiceUrl,
              protocol: "grpc",
              timeoutMs: 0,
              interceptors: clientInterceptors,
              ...(options.userServiceTls === undefined ? {} : { tls: options.userServiceTls }),
            }),
    }),
  );
  const rateLimiter = createRateLimiter({
    limits: options.rateLimits ?? defaultRateLimits,
    // Login and CreateUser are open to anyone: limit them per address, whoever callers claim to be.
    keyBy: { "user.v1.UserService/Login": "peer", "user.v1.UserService/CreateUser": "peer" },
    ...(options.sharedRateLimits === undefined
      ? {}
      : { shared: createSharedBuckets(options.sharedRateLimits) }),
  });
  const ipAccess = createIpAccess({
    rules: options.ipAccess ?? {},
    ...(options.auditLog === undefined ? {} : { audit: options.auditLog }),
  });
  const publicServices = {
    [Health.typeName]: { public: true },
    "grpc.reflection.v1.ServerReflection": { public: true },
    "grpc.reflection.v1alpha.ServerReflection": { public: true },
  };
  const health = createHealthService({ services: [UserService.typeName, OrderService.typeName] });
  const conditions = createHealthConditions(health);
  const protection = createLoadProtection({
    ...(options.loadShedding === undefined ? {} : { shedding: options.loadShedding }),
    ...(options.memoryLimits === undefined ? {} : { memory: options.memoryLimits }),
    ...(options.loadSampleIntervalMs === undefined
      ? {}
      : { sampleIntervalMs: options.loadSampleIntervalMs }),
    onShed: (reason) => shedMetrics.shed(reason),
    health: conditions,
    logger,
  });
  const shedder = protection?.shedder;
  // Registered whether or not anything is shed, so that dashboards and alerts find the series.
  const shedMetrics = createShedMetrics({
    registry: metrics.registry,
    reasons: shedReasons,
    probability: () => shedder?.state.probability ?? 0,
  });
  // Outermost first. The request id wraps everything, so that even an unexpected error carries it.
  // Audit comes next, before authentication: refused attempts (a wrong password, a forged token)
  // are recorded too, and errors reach it already turned into what the client saw. Metrics run
  // inside tracing, to attach the trace to their samples as exemplars.
  const refusals = createRefusalSummary({
    intervalMs: options.refusalSummaryIntervalMs ?? 10_000,
    emit: (level, fields, message) => logger[level](fields, message),
  });
  const deadlines = { defaultTimeoutMs: options.defaultTimeoutMs ?? 30_000 };
  const defaultTimeoutFor = deadlineDefaults(deadlines);
  // On load protection's sampler when there is one (every 100 ms by default, the report summing
  // up each interval's samples), so that the process runs one sampling timer; else its own.
  const loadReporter =
    options.loadReports === false
      ? undefined
      : createLoadReporter({
          ...options.loadReports,
          ...(protection === undefined ? {} : { sampler: protection.sampler }),
        });
  // Error messages are bounded outside everything, whatever raised them and whatever they quote.
  const authentication = createAuthenticationInterceptor({
    secret: keyring,
    ...(options.tokens.jwks === undefined ? {} : { jwks: options.tokens.jwks }),
    ...(oidc === undefined ? {} : { oidc }),
    issuer: tokens.issuer,
    audience: tokens.audience,
    policies: publicServices,
    checkPrincipal: accounts.check,
    ...(apiKeys === undefined
      ? {}
      : { apiKeys: { prefix: apiKeyPrefix, authenticate: apiKeys.authenticate } }),
  });
  // The load report goes on every answer, refusals included, and counts every call.
  const interceptors: Interceptor[] = [
    ...(loadReporter === undefined ? [] : [loadReporter.interceptor]),
    createBoundedErrorsInterceptor(),
    createRequestIdInterceptor(),
    // Before everything that costs: a refused address gets no token verified, no body read.
    ipAccess.interceptor,
    ...(options.auditLog === undefined ? [] : [createAuditInterceptor({ log: options.auditLog })]),
    // Store errors are ConnectErrors by the time they leave a service (mapStoreErrors): what is
    // left for recovery is unexpected, and becomes INTERNAL.
    createRecoveryInterceptor({ logger }),
    createTracingInterceptor(),
    metrics.interceptor,
    createLoggingInterceptor({ logger, refusals }),
    createDeadlineInterceptor(deadlines),
    authentication,
    rateLimiter.interceptor,
    createAuthorizationInterceptor({
      orderOwner: createOrderOwners(store),
      // Another user's order answers as a missing one does, unless the caller may see them all.
      hideOthersOrders: {
        notFound: orderNotFound,
        exceptRoles: [...createPolicyResolver()(OrderService.method.getOrder).roles],
      },
      policies: publicServices,
    }),
    createStreamLimitInterceptor(options.streamLimits),
    createValidationInterceptor({
      schemas: { ...userRequestSchemas, ...orderRequestSchemas, ...apiKeyRequestSchemas },
      itemized: ["user.v1.UserService/BatchUpdateUsers", "order.v1.OrderService/UpdateShipment"],
    }),
  ];
  const services = [
    { service: UserService, impl: userService },
    { service: OrderService, impl: orderService },
    { service: Health, impl: health.service },
  ];
  const clientAddress = createClientAddressResolver(options.clientAddress);
  const contextValues = (req: {
    socket: { remoteAddress?: string | undefined };
    headers: IncomingHeaders;
  }) => createCallValues().set(peerKey, clientAddress(req.socket.remoteAddress ?? "", req.headers));
  const routes = (router: ConnectRouter) => {
    for (const { service, impl } of services) router.service(service, impl);
    registerReflection(router, { services: [UserService, OrderService, Health] });
  };
  // The engine serves every protocol; connect-node's adapter, with KEEL_ENGINE=connect, serves
  // gRPC, gRPC-Web and Connect instead.
  const engine = createEngine({
    routes,
    interceptors,
    contextValues,
    readMaxBytes: maxMessageBytes,
    writeMaxBytes: maxMessageBytes,
    ...(options.requestBodies === undefined
      ? {}
      : {
          bufferedBytesPerConnection: options.requestBodies.bufferedBytesPerConnection,
          bufferedBytesPerProcess: options.requestBodies.bufferedBytesPerProcess,
          bodyIdleTimeoutMs: options.requestBodies.idleTimeoutMs,
        }),
    acceptCompression: [compressionGzip, compressionBrotli],
    shutdownSignal: shutdown.signal,
    // What the interceptors never see is counted apart (keel_server_refused_total).
    onRefusal: createRefusalMetrics(metrics.registry).refused,
    // Shed calls are refused on their method alone: no body read, no interceptor, no handler.
    ...(shedder === undefined ? {} : { admit: (method) => shedder.check(method.parent.typeName) }),
    // A call to a method that needs a token, without a valid one, is refused before its body is
    // read; it still passes the interceptors, so that it is logged, counted and audited.
    // A refused address first: it gets no token verified.
    requestGate: (context) => {
      ipAccess.gate(context);
      return authentication.gate(context);
    },
    // The default deadline armed on the call's own timer, and `deadlineKey` set: the deadline
    // interceptor then only races the call, with no timer or controller of its own.
    defaultDeadline: (method) => {
      const ms = defaultTimeoutFor(method);
      return ms > 0 ? { ms, error: () => defaultDeadlineExpired(ms) } : undefined;
    },
    // The call's progress too: the deadline interceptor races it, logging and audit read it,
    // and no interceptor then makes the call's signal (an AbortController per call).
    onCallStart: (values, call) => {
      values.set(callProgressKey, call);
      if (call.defaultDeadline !== 0) values.set(deadlineKey, call.defaultDeadline);
    },
  });
  // REST routes are calls of the engine's methods (the message decoded from the URL and the JSON
  // body), so the same interceptors, context values and deadlines hold for them.
  const rest = createRestHandler({
    engine,
    services: [UserService, OrderService],
    openapi: readOpenApiDocument(),
  });
  // With KEEL_ENGINE=connect: what connect-node's adapter does not route (REST, /openapi.json) it
  // hands to the REST handler, on the same port.
  const connectHandler = connectNodeAdapter({
    routes,
    fallback: (req, res) => void rest(req, res),
    // The adapter (KEEL_ENGINE=connect) cannot refuse before its interceptors: shedding is the
    // first of them.
    interceptors: shedder === undefined ? interceptors : [shedder.interceptor, ...interceptors],
    contextValues,
    readMaxBytes: maxMessageBytes,
    writeMaxBytes: maxMessageBytes,
    acceptCompression: [compressionGzip, compressionBrotli],
    shutdownSignal: shutdown.signal,
  });
  const onEngine = (options.engine ?? "keel") === "keel";
  const cors = createCorsHandler({ allowedOrigins: options.corsAllowedOrigins ?? [] });
  const consolePage = createConsoleHandler({ enabled: options.console ?? false });
  const handler: Parameters<typeof listen>[0]["handler"] = (req, res) => {
    if (cors(req, res) || consolePage(req, res)) return;
    if (!onEngine) connectHandler(req, res);
    else if (!engine.handleRequest(req, res)) void rest(req, res);
  };
  const host = options.host ?? "0.0.0.0";
  // Every call starts in an unsampled new trace's context, which the tracing interceptor then
  // need not enter per call (see `serveInUnsampledTraces`).
  const listener: Listener = await serveInUnsampledTraces(() =>
    listen({
      host,
      port: options.port ?? 9090,
      handler,
      // HTTP/2 streams go to the engine, or to REST, as they are, but a browser's (an `origin`
      // header), which is answered on the request path, where CORS is; gRPC has no browsers.
      ...(onEngine
        ? {
            streamHandler: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) =>
              headers.origin === undefined
                ? engine.handleStream(stream, headers) || rest.serveStream(stream, headers)
                : grpcContentType.test(headers["content-type"] ?? "") &&
                  engine.handleStream(stream, headers),
          }
        : {}),
      ...(options.http2 === undefined ? {} : { http2: options.http2 }),
      ...(options.tls === undefined ? {} : { tls: options.tls }),
    }),
  );
  const monitor = monitorStore(store, conditions, logger, options.healthCheckIntervalMs ?? 5000);
  oidc?.warm().then(
    () => logger.info({ issuer: oidc.issuer }, "OpenID Connect issuer ready: its keys are loaded"),
    (err: unknown) =>
      logger.warn(
        { issuer: oidc.issuer, problem: (err as Error).message },
        "cannot load the OpenID Connect issuer's keys yet: its tokens are refused until it answers",
      ),
  );
  const admin =
    options.adminPort === null
      ? undefined
      : await startAdminServer({
          host,
          port: options.adminPort ?? 9091,
          metrics: createMetricsHandler({ registries: [metrics.registry] }),
          ready: () => health.status("") === Serving.SERVING,
          ...(options.profiling === undefined
            ? {}
            : {
                routes: createProfileEndpoint({
                  tokens: {
                    secret: keyring,
                    issuer: options.tokens.issuer ?? "keel",
                    audience: options.tokens.audience ?? "keel",
                  },
                  maxSeconds: options.profiling.maxSeconds,
                  take: async (request) => {
                    if (request.worker !== undefined) {
                      throw new ProfileRequestError(400, "worker is for cluster mode only");
                    }
                    return { path: await takeProfile(request) };
                  },
                }),
              }),
        });
  const urlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  const scheme = options.tls === undefined ? "http" : "https";
  selfUrl = `${scheme}://${urlHost.includes(":") ? `[${urlHost}]` : urlHost}:${listener.port}`;
  logger.info(
    { host, port: listener.port, adminPort: admin?.port, tls: options.tls !== undefined },
    "serving gRPC, gRPC-Web and Connect",
  );

  let closing: Promise<void> | undefined;
  return {
    port: listener.port,
    adminPort: admin?.port,
    metricsRegistry: metrics.registry,
    url: selfUrl,
    health,
    rateLimiter,
    refusals,
    setTls: (tls) => listener.setTls(tls),
    setSigningKeys: (keys) => keyring.update(keys),
    ipAccess,
    close({ graceMs = 10_000, delayMs = 0 } = {}) {
      closing ??= (async () => {
        health.shutdown();
        monitor.stop();
        loadReporter?.close();
        protection?.stop();
        if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
        const closed = listener.close(graceMs);
        shutdown.abort(shuttingDown());
        await closed;
        await admin?.close();
        await store.close();
        refusals.stop();
        logger.info("stopped");
      })();
      return closing;
    },
  };
}

/**
 * Checks the database every few seconds: while it does not answer, every service reports
 * NOT_SERVING (and /readyz 503), so that traffic goes elsewhere until it is back.
 */
function monitorStore(
  store: Store,
  health: HealthConditions,
  logger: Logger,
  intervalMs: number,
): { stop(): void } {
  let healthy = true;
  const timer = setInterval(() => {
    store.ping().then(
      () => {
        if (healthy) return;
        healthy = true;
        health.set("database", true);
        logger.info("the database answers again: serving");
      },
      (err: unknown) => {
        if (!healthy) return;
        healthy = false;
        health.set("database", false);
        logger.error({ err }, "the database does not answer: not serving");
      },
    );
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
