import type { IncomingHttpHeaders } from "node:http2";
import { Code, ConnectError, createContextValues, type UnaryRequest } from "@connectrpc/connect";
import { Call, callKey } from "./call.ts";
import type { EngineContext } from "./engine-context.ts";
import type { EngineMethod } from "./method-table.ts";
import type { PlainHeaders } from "./plain-headers.ts";

/** What a call starts from, whatever brought it: the wire, a client in this process, REST. */
export interface CallStart {
  /** What `HandlerContext.protocolName` says: "grpc", "in-process", "rest", … */
  protocolName: string;
  /** The client's timeout in ms, from its headers; undefined: none (the default deadline). */
  timeoutMs: number | undefined;
  /** The request's headers as they arrived, for the engine's `contextValues`. */
  headers: IncomingHttpHeaders;
  /** The peer's address, for the engine's `contextValues`. */
  peer: string;
  /** What interceptors see as `req.url`. */
  url: string;
  /** What interceptors see as `req.requestMethod`. */
  requestMethod: string;
  /** What interceptors see as `req.header`. */
  header: Headers;
  /** The response headers and trailers, when the protocol has set some already. */
  responseHeader?: PlainHeaders;
  responseTrailer?: PlainHeaders;
}

/**
 * A call's request as the engine builds it, its message set once it has been read; handed to the
 * chain as the `AnyRequest` it then is.
 */
export type StartedRequest = Omit<UnaryRequest, "stream" | "message"> & {
  stream: boolean;
  message: unknown;
};

/** The parts of the engine a call's start needs. */
export type CallEngine = Pick<
  EngineContext,
  "contextValues" | "track" | "deadlineFor" | "onDefaultDeadline"
>;

/**
 * Starts a call's state, the one way every kind of call does: its `Call` (deadline from the
 * client's timeout or the method's default, armed now), its context values (the engine's
 * `contextValues`, the call under `callKey`, the default deadline told), counted in flight until
 * it ends (the shutdown signal aborts it), and the request the interceptor chain gets, whose
 * signal is made only when read.
 */
export function startCall(
  engine: CallEngine,
  entry: EngineMethod,
  start: CallStart,
): { call: Call; request: StartedRequest } {
  const call = new Call(
    start.protocolName,
    start.timeoutMs,
    start.responseHeader,
    start.responseTrailer,
    engine.deadlineFor(entry),
  );
  const contextValues =
    engine.contextValues?.({ headers: start.headers, socket: { remoteAddress: start.peer } }) ??
    createContextValues();
  contextValues.set(callKey, call);
  if (call.defaultDeadline !== 0) engine.onDefaultDeadline?.(contextValues, call.defaultDeadline);
  call.onAbort(engine.track(call));
  const request = {
    stream: entry.method.methodKind !== "unary",
    service: entry.service,
    method: entry.method,
    requestMethod: start.requestMethod,
    url: start.url,
    header: start.header,
    contextValues,
    message: undefined as unknown,
    // A getter in the literal keeps every request of one shape (defineProperty per call would
    // not); the signal is made when an interceptor or the handler first reads it.
    get signal() {
      return call.signal;
    },
  };
  return { call, request: request as StartedRequest };
}

/** Ends the call with the signal's reason when the signal aborts (at once if it has). */
export function abortWith(call: Call, signal: AbortSignal): void {
  const onAbort = () => call.abort(signal.reason);
  if (signal.aborted) {
    onAbort();
    return;
  }
  signal.addEventListener("abort", onAbort, { once: true });
  call.onAbort(() => signal.removeEventListener("abort", onAbort));
}

/**
 * An error as a client gets it: a ConnectError as it was thrown, anything else as a bare INTERNAL
 * "internal error" (the cause kept, never sent), as connect answers.
 */
export function asWireError(err: unknown): ConnectError {
  return err instanceof ConnectError
    ? err
    : new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}

/**
 * A call's answers; the call ends (its signal aborts) when they end, fail (with the error as
 * clients get it) or are left unread (CANCELED), even before the first was asked for.
 */
export function finishing<T>(messages: AsyncIterable<T>, call: Call): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      const it = messages[Symbol.asyncIterator]();
      return {
        async next() {
          try {
            const step = await it.next();
            if (step.done === true) call.abort();
            return step;
          } catch (err) {
            call.abort(err);
            throw asWireError(err);
          }
        },
        async return(value?: unknown) {
          if (!call.isAborted) {
            call.abort(new ConnectError("the client stopped reading", Code.Canceled));
          }
          await it.return?.(value);
          return { done: true, value: value as T };
        },
      };
    },
  };
}

/** One message as the stream a server-streaming method's chain takes. */
export async function* one<T>(message: T): AsyncIterable<T> {
  yield message;
}
