import type * as http2 from "node:http2";
import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  fromBinary,
  isMessage,
  toBinary,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";

/** A service and its implementation, as given to connect's router. */
export interface FastPathService {
  service: DescService;
  // biome-ignore lint/suspicious/noExplicitAny: implementations of any service
  impl: Record<string, any>;
}

export interface GrpcFastPathOptions {
  services: FastPathService[];
  /** The same interceptors, in the same order, as the connect router's. */
  interceptors: Interceptor[];
  /** The context values of a call from this peer address. */
  contextValues: (remoteAddress: string) => ContextValues;
  maxMessageBytes: number;
}

/**
 * Takes an HTTP/2 stream it can serve and answers true, or leaves it untouched and answers false
 * (the caller then hands it to connect).
 */
export type StreamHandler = (
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
) => boolean;

// The call's state travels with the request through the interceptors (object spread keeps
// symbol keys), to the implementation at the end of the chain.
const callKey = Symbol("keel.call");
type CarryingRequest = UnaryRequest & { [callKey]: Call };

interface Route {
  method: DescMethod;
  service: DescService;
  invoke: (req: CarryingRequest) => Promise<UnaryResponse>;
}

// A session's peer address, read once per connection (the session's socket is a proxy object).
const peerAddress = Symbol("keel.peerAddress");
type AddressedSession = http2.ServerHttp2Session & { [peerAddress]?: string };

function peerOf(session: AddressedSession): string {
  let address = session[peerAddress];
  if (address === undefined) {
    address = session.socket?.remoteAddress ?? "";
    session[peerAddress] = address;
  }
  return address;
}

const noop = () => {};

/**
 * A lean path for the most common call there is, unary gRPC over HTTP/2: it takes the raw HTTP/2
 * stream (no compatibility request and response objects), reads the one framed message, runs the
 * very same interceptor chain and implementation as connect's router, and writes the framed
 * answer and trailers straight to the stream, skipping the async-iterable pipeline connect builds
 * for every protocol and call kind. Semantics stay connect's (deadlines from `grpc-timeout`,
 * cancellation when the client resets the stream, error trailers and details through connect's
 * own functions). Anything else — other protocols, streams, compression, browsers (an `origin`
 * header: CORS is answered on the other path) — is left to connect.
 */
export function createGrpcFastPath(options: GrpcFastPathOptions): StreamHandler {
  const routes = new Map<string, Route>();
  for (const { service, impl } of options.services) {
    for (const method of service.methods) {
      const fn = impl[method.localName];
      if (method.methodKind !== "unary" || typeof fn !== "function") continue;
      const output = method.output;
      const last = async (req: UnaryRequest): Promise<UnaryResponse> => {
        const call = (req as CarryingRequest)[callKey];
        const context: HandlerContext = {
          method,
          service,
          signal: req.signal,
          timeoutMs: call.timeoutMs,
          requestMethod: "POST",
          requestHeader: req.header,
          responseHeader: call.responseHeader,
          responseTrailer: call.responseTrailer,
          protocolName: "grpc",
          values: req.contextValues,
          url: req.url,
        };
        const result = await fn.call(impl, req.message, context);
        return {
          stream: false,
          service,
          method,
          header: call.responseHeader,
          trailer: call.responseTrailer,
          message: isMessage(result, output) ? result : create(output as DescMessage, result),
        } as UnaryResponse;
      };
      let invoke = last;
      for (let i = options.interceptors.length - 1; i >= 0; i--) {
        invoke = (options.interceptors[i] as Interceptor)(invoke as never) as typeof last;
      }
      routes.set(`/${service.typeName}/${method.name}`, { method, service, invoke });
    }
  }

  return (stream, headers) => {
    const contentType = headers["content-type"];
    const encoding = headers["grpc-encoding"];
    const route = routes.get(headers[":path"] ?? "");
    if (
      route === undefined ||
      headers[":method"] !== "POST" ||
      (contentType !== "application/grpc" && contentType !== "application/grpc+proto") ||
      (encoding !== undefined && encoding !== "identity") ||
      headers.origin !== undefined
    ) {
      return false;
    }
    // Without a listener, a stream error (a reset with an error code) would be thrown.
    stream.on("error", noop);
    read(route, stream, headers, options);
    return true;
  };
}

function read(
  route: Route,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  options: GrpcFastPathOptions,
): void {
  let body: Buffer | undefined;
  let chunks: Buffer[] | undefined;
  let size = 0;
  let refused: ConnectError | undefined;
  stream.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size > options.maxMessageBytes + 5) {
      refused ??= new ConnectError(
        `message larger than configured max ${options.maxMessageBytes}`,
        Code.ResourceExhausted,
      );
      return;
    }
    if (body === undefined) body = chunk;
    else if (chunks === undefined) chunks = [body, chunk];
    else chunks.push(chunk);
  });
  stream.once("end", () => {
    if (refused !== undefined) return respondError(stream, refused, undefined);
    const message = chunks !== undefined ? Buffer.concat(chunks) : (body ?? Buffer.alloc(0));
    call(route, stream, headers, message, options).catch(() => stream.destroy());
  });
}

/** One call in flight: what its handler context holds besides the request itself. */
class Call {
  readonly controller = new AbortController();
  readonly responseHeader = new Headers();
  readonly responseTrailer = new Headers();
  done = false;
  private timer: NodeJS.Timeout | undefined;
  private deadline = 0;

  constructor(timeoutMs: number | undefined) {
    if (timeoutMs === undefined) return;
    this.deadline = Date.now() + timeoutMs;
    const expire = () =>
      this.controller.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
    if (timeoutMs <= 0) expire();
    else this.timer = setTimeout(expire, timeoutMs);
  }

  readonly timeoutMs = (): number | undefined =>
    this.deadline === 0 ? undefined : this.deadline - Date.now();

  /** The client went away before the answer: abort the handler's signal. */
  cancel(): void {
    if (!this.done) {
      this.controller.abort(new ConnectError("the client cancelled the call", Code.Canceled));
    }
  }

  finish(): void {
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }
}

async function call(
  route: Route,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  body: Buffer,
  options: GrpcFastPathOptions,
) {
  const { method, service } = route;
  const timeout = parseTimeout(
    (headers["grpc-timeout"] as string | undefined) ?? null,
    Number.MAX_SAFE_INTEGER,
  );
  if (timeout.error !== undefined) return respondError(stream, timeout.error, undefined);
  const input = decode(method, body);
  if (input instanceof ConnectError) return respondError(stream, input, undefined);

  const requestHeader = new Headers();
  for (const name in headers) {
    const value = headers[name];
    if (name.charCodeAt(0) === 58 /* ":" pseudo-header */ || value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) requestHeader.append(name, v);
    else requestHeader.set(name, value);
  }
  const state = new Call(timeout.timeoutMs);
  // The client cancelling (resetting the stream) aborts the call, as in connect.
  stream.once("close", () => state.cancel());
  // No shutdown signal: linking it would add a listener to a process-wide signal on every call. A
  // unary call in flight at shutdown gets the grace period to finish instead.
  const remoteAddress = peerOf(stream.session as AddressedSession);
  const request: CarryingRequest = {
    stream: false,
    service,
    method,
    requestMethod: "POST",
    url: headers[":path"] as string,
    signal: state.controller.signal,
    header: requestHeader,
    contextValues: options.contextValues(remoteAddress),
    message: input,
    [callKey]: state,
  } as CarryingRequest;
  try {
    const response = await route.invoke(request);
    const payload = toBinary(method.output, response.message);
    if (payload.length > options.maxMessageBytes) {
      throw new ConnectError(
        `message size ${payload.length} is larger than configured writeMaxBytes ${options.maxMessageBytes}`,
        Code.ResourceExhausted,
      );
    }
    if (stream.destroyed || stream.closed) return;
    const frame = Buffer.allocUnsafe(5 + payload.length);
    frame[0] = 0;
    frame.writeUInt32BE(payload.length, 1);
    frame.set(payload, 5);
    const trailers: http2.OutgoingHttpHeaders = { "grpc-status": "0" };
    response.trailer.forEach((value, name) => {
      trailers[name] = value;
    });
    respond(stream, response.header, trailers, frame);
  } catch (err) {
    respondError(stream, ConnectError.from(err, Code.Internal), state.responseHeader);
  } finally {
    state.finish();
  }
}

/** Response headers, the body (if any) and the trailers that carry the status. */
function respond(
  stream: http2.ServerHttp2Stream,
  header: Headers | undefined,
  trailers: http2.OutgoingHttpHeaders,
  frame: Buffer | undefined,
): void {
  const headers: http2.OutgoingHttpHeaders = {
    ":status": 200,
    "content-type": "application/grpc",
  };
  header?.forEach((value, name) => {
    headers[name] = value;
  });
  stream.respond(headers, { waitForTrailers: true });
  stream.once("wantTrailers", () => stream.sendTrailers(trailers));
  stream.end(frame);
}

/** The one message of a unary gRPC request, or the error to answer with. */
function decode(method: DescMethod, body: Buffer): unknown {
  if (body.length === 0) {
    return new ConnectError(
      "protocol error: missing input message for unary method",
      Code.Unimplemented,
    );
  }
  if (body.length < 5) return incompleteEnvelope(body.length, 5);
  if (body[0] !== 0) {
    return new ConnectError(
      "protocol error: received compressed message without grpc-encoding",
      Code.Internal,
    );
  }
  const length = body.readUInt32BE(1);
  if (body.length < 5 + length) return incompleteEnvelope(body.length, 5 + length);
  if (body.length > 5 + length) {
    return new ConnectError(
      "protocol error: received extra input message for unary method",
      Code.Unimplemented,
    );
  }
  try {
    return fromBinary(method.input, body.subarray(5));
  } catch (err) {
    return new ConnectError(
      "failed to parse the request message",
      Code.InvalidArgument,
      undefined,
      undefined,
      err,
    );
  }
}

/** A request that ended inside its one message frame: connect answers the same. */
function incompleteEnvelope(received: number, expected: number): ConnectError {
  return new ConnectError(
    `protocol error: incomplete envelope: the request ended after ${received} of ${expected} bytes`,
    Code.InvalidArgument,
  );
}

/** A response with no message and the error in its trailers: connect's status, message and details. */
function respondError(
  stream: http2.ServerHttp2Stream,
  error: ConnectError,
  header: Headers | undefined,
): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  const trailers: http2.OutgoingHttpHeaders = {};
  setTrailerStatus(new Headers(), error).forEach((value, name) => {
    trailers[name] = value;
  });
  respond(stream, header, trailers, undefined);
}
