import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { Message } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { WholeBodyReader } from "./body-readers.ts";
import type { Call } from "./call.ts";
import {
  abortWith,
  asConnectError,
  createCall,
  finishing,
  one,
  passGate,
  type StartedRequest,
  startCall,
} from "./call-lifecycle.ts";
import type { EngineContext } from "./engine-context.ts";
import { connectionOf } from "./exchange.ts";
import type { AnyRequest, EngineMethod } from "./method-table.ts";
import { PlainHeaders } from "./plain-headers.ts";
import { RequestBody } from "./request-body.ts";

/** An HTTP request's body, for a call's `message` function to read (see `InvokeOptions`). */
export interface InvokeBody {
  /**
   * The body as it arrives: the request (`node:http`, HTTP/2's compatibility layer) or the raw
   * stream; its bytes count against its connection's budget (see `connectionOf`).
   */
  source: http.IncomingMessage | http2.Http2ServerRequest | http2.ServerHttp2Stream;
  /** The request's `content-length`: a body declaring more than `readMaxBytes` is refused unread. */
  contentLength: string | undefined;
  /** The error for a body larger than the engine's `readMaxBytes` (default connect's). */
  tooLarge?: (readMaxBytes: number) => ConnectError;
}

/** A call made on behalf of another protocol (REST), whose request message is already decoded. */
export interface InvokeOptions {
  /** What `HandlerContext.protocolName` says, such as "rest". */
  protocolName: string;
  /** The request headers interceptors and the handler see (`req.header`). */
  header: Headers;
  /** The HTTP request's headers as they arrived, for the engine's `contextValues`. */
  headers: http2.IncomingHttpHeaders;
  /** The HTTP client's address, for the engine's `contextValues`. */
  peer: string;
  /** What interceptors see as `req.url`: the HTTP request's URL. */
  url: string;
  /** What interceptors see as `req.requestMethod`: the HTTP request's method. */
  requestMethod: string;
  /** Aborted when the client goes away: the call is cancelled with the signal's reason. */
  signal?: AbortSignal;
  /**
   * The client's timeout in ms, from its headers; undefined: none (the method's default deadline
   * applies). It starts now and covers reading the message; above the engine's `maxTimeoutMs`,
   * the call is refused (INVALID_ARGUMENT).
   */
  timeoutMs?: number;
  /**
   * The request message (of a unary or server-streaming method; of a client or bidi streaming
   * one, its messages as an AsyncIterable), or a function that reads and decodes it, called once
   * the request gate has let the call through: a call refused on its headers is never read.
   * The function is given `read`, which reads `body` whole (when there is one) within the
   * engine's limits — `readMaxBytes`, the buffered bytes per connection and per process, the idle
   * timeout — and the call's (its deadline, its cancellation), as a body off the wire is read.
   * Whatever it throws is the call's error, as thrown.
   */
  message: unknown;
  /** The HTTP request's body, for `message` to read (see above). */
  body?: InvokeBody;
}

/** Reads an invoked call's body whole; an empty buffer when it has none. */
export type ReadBody = () => Promise<Uint8Array>;

/** How a call invoked with `Engine.invoke` went. */
export type InvokeResult =
  | {
      /** A unary method's answer. */
      stream: false;
      message: Message;
      header: Headers;
      trailer: Headers;
      error?: undefined;
    }
  | {
      /**
       * A streaming method's answers, as they come; they throw the call's error as clients get it
       * if it fails midway. The call ends when they end, fail, or are left (`return()`).
       */
      stream: true;
      message: AsyncIterable<Message>;
      header: Headers;
      trailer: Headers;
      error?: undefined;
    }
  | {
      /**
       * Why the call failed, as clients get it: a ConnectError as it was thrown (its `metadata`
       * included), anything else as INTERNAL "internal error".
       */
      error: ConnectError;
      /** The response headers and trailers the interceptors and the handler had set. */
      header: Headers;
      trailer: Headers;
      stream?: undefined;
      message?: undefined;
    };

/**
 * Runs a call of `entry` for another protocol, with the same per-call state as a call off the
 * wire (see `startCall`): the deadline (the client's or the method's default), the context values
 * from the HTTP request's headers and peer, the shutdown signal, the request gate before the
 * message is read, the interceptor chain, and `ctx.signal` aborted when the call completes (for a
 * stream, when its answers end, fail or are left), fails, is cancelled or times out.
 */
export async function invokeMethod(
  engine: EngineContext,
  entry: EngineMethod,
  options: InvokeOptions,
): Promise<InvokeResult> {
  // Refused on its method alone, before any call state is made (see `EngineOptions.admit`).
  const refused = engine.admit?.(entry.method);
  if (refused !== undefined) return failed(refused, new PlainHeaders(), new PlainHeaders());
  const call = createCall(engine, entry, options.protocolName, options.timeoutMs);
  let request: StartedRequest;
  try {
    request = startCall(engine, entry, call, {
      headers: options.headers,
      peer: options.peer,
      url: options.url,
      requestMethod: options.requestMethod,
      header: options.header,
    });
  } catch (err) {
    // The engine's `contextValues` threw.
    call.abort(err);
    return failed(err, call.responseHeader, call.responseTrailer);
  }
  if (options.signal !== undefined) abortWith(call, options.signal);
  try {
    if (options.timeoutMs !== undefined && options.timeoutMs > engine.maxTimeoutMs) {
      throw new ConnectError(
        `timeout ${options.timeoutMs}ms must be <= ${engine.maxTimeoutMs}`,
        Code.InvalidArgument,
      );
    }
    // A refused call still passes through the interceptors, its message unread (see `refuse`).
    const gated = passGate(engine, entry, call, request);
    if (gated !== undefined) await gated;
    let message = options.message;
    if (typeof message === "function") {
      if (call.isAborted) throw abortReason(call);
      const body = options.body;
      const read: ReadBody = body === undefined ? readNothing : () => readWhole(engine, call, body);
      message = await untilAborted(call, message(read));
    }
    if (call.isAborted) throw abortReason(call);
    request.message = entry.method.methodKind === "server_streaming" ? one(message) : message;
    const response = await entry.invoke(request as AnyRequest);
    if (!response.stream) {
      call.abort();
      return {
        stream: false,
        message: response.message,
        header: response.header,
        trailer: response.trailer,
      };
    }
    return {
      stream: true,
      message: finishing(response.message, call),
      header: response.header,
      trailer: response.trailer,
    };
  } catch (err) {
    call.abort(err);
    return failed(err, call.responseHeader, call.responseTrailer);
  }
}

function failed(err: unknown, header: Headers, trailer: Headers): InvokeResult {
  return { error: asConnectError(err), header, trailer };
}

/** A method not served: UNIMPLEMENTED. */
export function unknownMethod(path: string): InvokeResult {
  // The path may be a client's: echoed in part only.
  const shown = path.length > 200 ? `${path.slice(0, 200)}…` : path;
  const error = new ConnectError(`unknown method ${shown}`, Code.Unimplemented);
  return failed(error, new PlainHeaders(), new PlainHeaders());
}

/** What `read` gives a call invoked without a body. */
const readNothing: ReadBody = () => Promise.resolve(new Uint8Array(0));

/** A body read whole, within the engine's limits and the call's (see `RequestBody`). */
async function readWhole(engine: EngineContext, call: Call, body: InvokeBody): Promise<Uint8Array> {
  const options = engine.bodyOptions(connectionOf(body.source));
  let reader: WholeBodyReader;
  try {
    reader = new WholeBodyReader(options.readMaxBytes, body.contentLength, 0, body.tooLarge);
  } catch (err) {
    // Declared too large: refused unread, and what the client sends anyway is read and dropped.
    body.source.resume();
    throw err;
  }
  const [whole] = await new RequestBody(body.source, call, options, reader).all();
  return whole?.data ?? new Uint8Array(0);
}

/** Why an aborted call ended. */
function abortReason(call: Call): unknown {
  return call.reason ?? new ConnectError("the call was cancelled", Code.Canceled);
}

/** What `value` settles with, unless the call is aborted first (its deadline passed, say). */
function untilAborted<T>(call: Call, value: T | Promise<T>): T | Promise<T> {
  if (!(value instanceof Promise)) return value;
  return new Promise<T>((resolve, reject) => {
    call.onAbort(reject);
    value.then(resolve, reject);
  });
}
