import type * as http from "node:http";
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
  createHandlerContext,
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
  contextValues: (req: http2.Http2ServerRequest) => ContextValues;
  maxMessageBytes: number;
}

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;
type Handler = (req: NodeRequest, res: NodeResponse) => void;

// The handler context travels with the request through the interceptors (object spread keeps
// symbol keys), to the implementation at the end of the chain.
const contextKey = Symbol("keel.handlerContext");
type CarryingRequest = UnaryRequest & { [contextKey]: HandlerContext };

interface Route {
  method: DescMethod;
  service: DescService;
  invoke: (req: CarryingRequest) => Promise<UnaryResponse>;
}

/** Ends a finished call's context; a shared reason, so that ending costs no error object. */
const finished = new ConnectError("the call finished", Code.Canceled);

/**
 * A lean path for the most common call there is, unary gRPC over HTTP/2: it reads the one framed
 * message, runs the very same interceptor chain and implementation as connect's router, and
 * writes the framed answer and trailers straight to the HTTP/2 stream, skipping the async-iterable
 * pipeline connect builds for every protocol and call kind. Semantics stay connect's (handler
 * context, deadlines from `grpc-timeout`, error trailers and details through connect's own
 * functions). Anything else — other protocols, streams, compression, HTTP/1.1 — goes to `next`.
 */
export function withGrpcFastPath(options: GrpcFastPathOptions, next: Handler): Handler {
  const routes = new Map<string, Route>();
  for (const { service, impl } of options.services) {
    for (const method of service.methods) {
      const fn = impl[method.localName];
      if (method.methodKind !== "unary" || typeof fn !== "function") continue;
      const output = method.output;
      const last = async (req: UnaryRequest): Promise<UnaryResponse> => {
        const ctx = (req as CarryingRequest)[contextKey];
        const result = await fn.call(impl, req.message, {
          ...ctx,
          service: req.service,
          requestHeader: req.header,
          signal: req.signal,
          values: req.contextValues,
        });
        return {
          stream: false,
          service,
          method,
          header: ctx.responseHeader,
          trailer: ctx.responseTrailer,
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

  return (req, res) => {
    if (req.httpVersionMajor !== 2) return next(req, res);
    const headers = req.headers;
    const contentType = headers["content-type"];
    const encoding = headers["grpc-encoding"];
    const route = routes.get(req.url ?? "");
    if (
      route === undefined ||
      (contentType !== "application/grpc" && contentType !== "application/grpc+proto") ||
      (encoding !== undefined && encoding !== "identity")
    ) {
      return next(req, res);
    }
    serve(route, req as http2.Http2ServerRequest, res as http2.Http2ServerResponse, options);
  };
}

function serve(
  route: Route,
  req: http2.Http2ServerRequest,
  res: http2.Http2ServerResponse,
  options: GrpcFastPathOptions,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let refused: ConnectError | undefined;
  req.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size > options.maxMessageBytes + 5) {
      refused ??= new ConnectError(
        `message larger than configured max ${options.maxMessageBytes}`,
        Code.ResourceExhausted,
      );
      return;
    }
    chunks.push(chunk);
  });
  req.once("end", () => {
    if (refused !== undefined) {
      respondError(res, refused, undefined);
      return;
    }
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    call(route, req, res, body, options).catch(() => req.stream.destroy());
  });
}

async function call(
  route: Route,
  req: http2.Http2ServerRequest,
  res: http2.Http2ServerResponse,
  body: Buffer,
  options: GrpcFastPathOptions,
) {
  const stream = req.stream;
  const { method, service } = route;
  const timeout = parseTimeout(
    (req.headers["grpc-timeout"] as string | undefined) ?? null,
    Number.MAX_SAFE_INTEGER,
  );
  if (timeout.error !== undefined) return respondError(res, timeout.error, undefined);
  const input = decode(method, body);
  if (input instanceof ConnectError) return respondError(res, input, undefined);

  const requestHeader = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.charCodeAt(0) === 58 /* ":" pseudo-header */ || value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) requestHeader.append(name, v);
    else requestHeader.set(name, value);
  }
  // The client cancelling (resetting the stream) aborts the call, as in connect.
  const cancelled = new AbortController();
  let done = false;
  stream.once("close", () => {
    if (!done) cancelled.abort(new ConnectError("the client cancelled the call", Code.Canceled));
  });
  const ctx = createHandlerContext({
    service,
    method,
    protocolName: "grpc",
    requestMethod: "POST",
    url: req.url,
    requestSignal: cancelled.signal,
    // No shutdown signal: linking it would add a listener to a process-wide signal on every call
    // (connect removes it by aborting each finished call, at the cost of an error object per
    // call). A unary call in flight at shutdown gets the grace period to finish instead.
    requestHeader,
    contextValues: options.contextValues(req),
    ...(timeout.timeoutMs === undefined ? {} : { timeoutMs: timeout.timeoutMs }),
  });
  const request: CarryingRequest = {
    stream: false,
    service,
    method,
    requestMethod: "POST",
    url: req.url,
    signal: ctx.signal,
    header: requestHeader,
    contextValues: ctx.values,
    message: input,
    [contextKey]: ctx,
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
    const responseHeaders: http2.OutgoingHttpHeaders = { "content-type": "application/grpc" };
    response.header.forEach((value, name) => {
      responseHeaders[name] = value;
    });
    const trailers: http2.OutgoingHttpHeaders = { "grpc-status": "0" };
    response.trailer.forEach((value, name) => {
      trailers[name] = value;
    });
    // Through the compatibility response, which owns the stream's trailers.
    res.writeHead(200, responseHeaders);
    res.addTrailers(trailers);
    res.end(frame);
  } catch (err) {
    respondError(res, ConnectError.from(err, Code.Internal), ctx.responseHeader);
  } finally {
    done = true;
    // Ends a deadline's timer; without one there is nothing to release.
    if (timeout.timeoutMs !== undefined) ctx.abort(finished);
  }
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
  res: http2.Http2ServerResponse,
  error: ConnectError,
  header: Headers | undefined,
): void {
  if (res.stream.destroyed || res.stream.closed || res.headersSent) return;
  const headers: http2.OutgoingHttpHeaders = { "content-type": "application/grpc" };
  header?.forEach((value, name) => {
    headers[name] = value;
  });
  const trailers: http2.OutgoingHttpHeaders = {};
  setTrailerStatus(new Headers(), error).forEach((value, name) => {
    trailers[name] = value;
  });
  res.writeHead(200, headers);
  res.addTrailers(trailers);
  res.end();
}
