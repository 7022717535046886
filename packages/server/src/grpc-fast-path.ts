import type * as http2 from "node:http2";
import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  isMessage,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type StreamRequest,
  type StreamResponse,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { parseTimeout } from "@connectrpc/connect/protocol-grpc";
import { deadlineKey } from "@keel/interceptors";
import { Call } from "./grpc-call.ts";
import {
  decode,
  drained,
  encode,
  endWithTrailers,
  respond,
  respondError,
  respondHeaders,
  withStatus,
} from "./grpc-wire.ts";
import { PlainHeaders } from "./plain-headers.ts";

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
  /** The context values of a call from this peer address, with these request headers. */
  contextValues: (remoteAddress: string, headers: http2.IncomingHttpHeaders) => ContextValues;
  maxMessageBytes: number;
  /**
   * The deadline (ms, 0: none) of a call of `method` whose client set none: armed on the call's
   * own timer, with `deadlineKey` set, so that the deadline interceptor only enforces it.
   */
  defaultTimeoutMs?: (method: DescMethod) => number;
  /**
   * Aborts the signal of every server stream still open (its reason is what the client gets), as
   * connect's router does with the same signal. Unary calls are not linked to it: a listener per
   * call on one process-wide signal costs more than it is worth; a unary call in flight at
   * shutdown gets the grace period to finish instead.
   */
  shutdownSignal?: AbortSignal;
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
type Carrying<R> = R & { [callKey]: Call };
type AnyRequest = UnaryRequest | StreamRequest;
type AnyResponse = UnaryResponse | StreamResponse;

interface Route {
  method: DescMethod;
  service: DescService;
  streaming: boolean;
  defaultTimeoutMs: number;
  invoke: (req: Carrying<AnyRequest>) => Promise<AnyResponse>;
}

// A session's peer address, read once per connection (the session's socket is a proxy object).
const peerAddress = Symbol("keel.peerAddress");
type AddressedSession = http2.ServerHttp2Session & { [peerAddress]?: string };

/** The peer's address ("" once the stream has lost its session: the client is gone). */
function peerOf(session: AddressedSession | undefined): string {
  if (session === undefined) return "";
  let address = session[peerAddress];
  if (address === undefined) {
    address = session.socket?.remoteAddress ?? "";
    session[peerAddress] = address;
  }
  return address;
}

const noop = () => {};

/**
 * A lean path for the most common calls there are, unary and server-streaming gRPC over HTTP/2:
 * it takes the raw HTTP/2 stream (no compatibility request and response objects), reads the one
 * framed request message, runs the very same interceptor chain and implementation as connect's
 * router, and writes framed answers and trailers straight to the stream, skipping the
 * async-iterable pipeline connect builds for every protocol and call kind. Semantics stay
 * connect's: deadlines from `grpc-timeout`, cancellation when the client resets the stream, the
 * shutdown signal for streams, headers sent with the first message (so handlers can still set
 * them), an error that is not a ConnectError answered as a bare "internal error", statuses and
 * details in trailers through connect's own functions. Anything else — other protocols, client
 * and bidi streams, compression, browsers (an `origin` header: CORS is answered on the other
 * path) — is left to connect.
 */
export function createGrpcFastPath(options: GrpcFastPathOptions): StreamHandler {
  const routes = new Map<string, Route>();
  for (const { service, impl } of options.services) {
    for (const method of service.methods) {
      const fn = impl[method.localName];
      const streaming = method.methodKind === "server_streaming";
      if ((method.methodKind !== "unary" && !streaming) || typeof fn !== "function") continue;
      const output = method.output as DescMessage;
      // The handler's context: the request as the interceptors left it, and the call's own parts.
      const contextOf = (req: AnyRequest): HandlerContext => {
        const call = (req as Carrying<AnyRequest>)[callKey];
        return {
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
      };
      const last = streaming
        ? async (req: AnyRequest): Promise<AnyResponse> => {
            const context = contextOf(req);
            const input = await single(req.message as AsyncIterable<unknown>);
            const messages = fn.call(impl, input, context) as AsyncIterable<unknown>;
            return {
              stream: true,
              service,
              method,
              header: context.responseHeader,
              trailer: context.responseTrailer,
              message: normalized(messages, output),
            } as StreamResponse;
          }
        : async (req: AnyRequest): Promise<AnyResponse> => {
            const context = contextOf(req);
            const result = await fn.call(impl, req.message, context);
            return {
              stream: false,
              service,
              method,
              header: context.responseHeader,
              trailer: context.responseTrailer,
              message: isMessage(result, output) ? result : create(output, result),
            } as UnaryResponse;
          };
      let invoke = last;
      for (let i = options.interceptors.length - 1; i >= 0; i--) {
        invoke = (options.interceptors[i] as Interceptor)(invoke as never) as typeof last;
      }
      routes.set(`/${service.typeName}/${method.name}`, {
        method,
        service,
        streaming,
        defaultTimeoutMs: options.defaultTimeoutMs?.(method) ?? 0,
        invoke,
      });
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

/** The one message of a server-streaming request (interceptors may have wrapped the stream). */
async function single(messages: AsyncIterable<unknown>): Promise<unknown> {
  for await (const message of messages) return message;
  throw new ConnectError(
    "protocol error: missing input message for server-streaming method",
    Code.Unimplemented,
  );
}

/** The request stream of a server-streaming call: its one message. */
async function* just(message: unknown): AsyncIterable<unknown> {
  yield message;
}

/** The handler's messages as messages of `output`: a handler may yield plain initializers. */
function normalized(messages: AsyncIterable<unknown>, output: DescMessage): AsyncIterable<unknown> {
  return {
    [Symbol.asyncIterator]() {
      const it = messages[Symbol.asyncIterator]();
      return {
        next: () =>
          it
            .next()
            .then((step) =>
              step.done === true || isMessage(step.value, output)
                ? step
                : { done: false, value: create(output, step.value as never) },
            ),
        return: (value?: unknown) =>
          it.return?.(value) ?? Promise.resolve({ done: true as const, value }),
        throw: (err?: unknown) => it.throw?.(err) ?? Promise.reject(err),
      };
    },
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
  const onData = (chunk: Buffer) => {
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
  };
  // `on`, not `once`, and taken off by hand: `once` wraps every listener.
  const onEnd = () => {
    stream.off("data", onData);
    stream.off("end", onEnd);
    if (refused !== undefined) return respondError(stream, refused, undefined, undefined);
    const message = chunks !== undefined ? Buffer.concat(chunks) : (body ?? Buffer.alloc(0));
    call(route, stream, headers, message, options).catch(() => stream.destroy());
  };
  stream.on("data", onData);
  stream.on("end", onEnd);
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
  if (timeout.error !== undefined) {
    return respondError(stream, timeout.error, undefined, undefined);
  }
  const input = decode(method, body);
  if (input instanceof ConnectError) return respondError(stream, input, undefined, undefined);

  const requestHeader = PlainHeaders.fromHttp2(headers);
  const state = new Call(timeout.timeoutMs, route.defaultTimeoutMs);
  // The client cancelling (resetting the stream) aborts the call, as in connect.
  const onClose = () => state.cancel();
  stream.on("close", onClose);
  if (route.streaming && options.shutdownSignal !== undefined) state.link(options.shutdownSignal);
  const contextValues = options.contextValues(
    peerOf(stream.session as AddressedSession | undefined),
    headers,
  );
  if (state.defaultDeadline !== 0) contextValues.set(deadlineKey, state.defaultDeadline);
  const request = {
    stream: route.streaming,
    service,
    method,
    requestMethod: "POST",
    url: headers[":path"] as string,
    signal: state.controller.signal,
    header: requestHeader,
    contextValues,
    message: route.streaming ? just(input) : input,
    [callKey]: state,
  } as Carrying<AnyRequest>;
  try {
    const response = await route.invoke(request);
    if (response.stream) {
      await pump(stream, method.output, response, options.maxMessageBytes);
      return;
    }
    const frame = encode(method.output, response.message, options.maxMessageBytes);
    if (stream.destroyed || stream.closed) return;
    respond(stream, response.header, withStatus(response.trailer, undefined), frame);
  } catch (err) {
    respondError(stream, err, state.responseHeader, state.responseTrailer);
  } finally {
    state.finish();
    // The stream outlives the call a little (until the client has its trailers): what the call
    // held must not live on with it, or it survives a young-generation GC and costs a full one.
    stream.off("close", onClose);
  }
}

/**
 * Writes a response stream's messages as they come, waiting when the client reads slower than
 * the handler writes; headers go with the first message, the status in the trailers. A failure
 * of the stream is thrown for the caller to answer, unless headers went out already: then it
 * ends the stream here.
 */
async function pump(
  stream: http2.ServerHttp2Stream,
  output: DescMessage,
  response: StreamResponse,
  maxMessageBytes: number,
): Promise<void> {
  const it = response.message[Symbol.asyncIterator]();
  let sentHeaders = false;
  let finished = false;
  try {
    for (;;) {
      const step = await it.next();
      if (step.done === true) break;
      const frame = encode(output, step.value, maxMessageBytes);
      if (stream.destroyed || stream.closed) return;
      if (!sentHeaders) {
        respondHeaders(stream, response.header);
        sentHeaders = true;
      }
      if (!stream.write(frame)) await drained(stream);
    }
    finished = true;
    if (stream.destroyed || stream.closed) return;
    const trailers = withStatus(response.trailer, undefined);
    if (!sentHeaders) return respond(stream, response.header, trailers, undefined);
    endWithTrailers(stream, trailers);
  } catch (err) {
    finished = true;
    if (!sentHeaders) throw err;
    if (stream.destroyed || stream.closed) return;
    endWithTrailers(stream, withStatus(response.trailer, err));
  } finally {
    // Stopped early (the client went away): let the handler's generator run its cleanup. Not
    // awaited: it may be waiting for its next message.
    if (!finished) it.return?.()?.catch(noop);
  }
}
