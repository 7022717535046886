import type { IncomingHttpHeaders } from "node:http2";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type UnaryRequest } from "@connectrpc/connect";
import { Call, callKey } from "./call.ts";
import { createCallValues } from "./context-values.ts";
import type { EngineContext } from "./engine-context.ts";
import { type AnyRequest, contextOf, type EngineMethod } from "./method-table.ts";
import type { PlainHeaders } from "./plain-headers.ts";

/** What a call's request is made of, whatever brought it: the wire, a client in this process, REST. */
export interface CallInit {
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
  "contextValues" | "track" | "deadlineFor" | "clientDeadlines" | "onCallStart"
>;

/**
 * A call of `entry`, its deadline armed now: the client's timeout (ms; undefined: none), or else
 * the method's default.
 */
export function createCall(
  engine: CallEngine,
  entry: EngineMethod,
  protocolName: string,
  timeoutMs: number | undefined,
  responseHeader?: PlainHeaders,
  responseTrailer?: PlainHeaders,
): Call {
  return new Call(
    protocolName,
    timeoutMs,
    responseHeader,
    responseTrailer,
    engine.deadlineFor(entry),
    engine.clientDeadlines,
  );
}

/** The call a request started by `startCall` belongs to, for its `signal` getter. */
const requestCall = Symbol("keel engine call");

const lazySignal: PropertyDescriptor = {
  get(this: { [requestCall]: Call }) {
    return this[requestCall].signal;
  },
  enumerable: true,
  configurable: true,
};

/**
 * Starts a call's state, the one way every kind of call does: its context values (the engine's
 * `contextValues`, the call under `callKey`, `onCallStart` told), counted in flight until
 * it ends (the shutdown signal aborts it), and the request the interceptor chain gets, whose
 * signal is made only when read.
 */
export function startCall(
  engine: CallEngine,
  entry: EngineMethod,
  call: Call,
  init: CallInit,
): StartedRequest {
  const contextValues =
    engine.contextValues?.({ headers: init.headers, socket: { remoteAddress: init.peer } }) ??
    createCallValues();
  contextValues.set(callKey, call);
  engine.onCallStart?.(contextValues, call);
  engine.track(call);
  const request = {
    stream: entry.method.methodKind !== "unary",
    service: entry.service,
    method: entry.method,
    requestMethod: init.requestMethod,
    url: init.url,
    header: init.header,
    contextValues,
    message: undefined as unknown,
    [requestCall]: call,
  };
  // The signal is made when an interceptor or the handler first reads it: an own getter (a
  // request spread by an interceptor keeps its signal), defined with one shared descriptor (a
  // getter in the literal would cost a closure and a slow definition per call).
  Object.defineProperty(request, "signal", lazySignal);
  return request as unknown as StartedRequest;
}

/**
 * Runs the engine's request gate, if any, on the context a handler would get of the call as it
 * arrived (a promise only when the gate returns one); a call it refuses is refused (see `refuse`),
 * which throws.
 */
export function passGate(
  engine: Pick<EngineContext, "requestGate">,
  entry: EngineMethod,
  call: Call,
  request: StartedRequest,
): void | Promise<void> {
  const gate = engine.requestGate;
  if (gate === undefined) return;
  let pending: void | Promise<void>;
  try {
    pending = gate(contextOf(request as AnyRequest));
  } catch (err) {
    return refuse(entry, call, request, err);
  }
  if (pending !== undefined) return pending.then(noop, (err) => refuse(entry, call, request, err));
}

/**
 * A call the request gate refused: its body is not read, but the call still goes through the
 * interceptors (logging, metrics and audit see it) with an empty message, or none for a stream;
 * the implementation is never reached, and the answer is an error whatever the chain returns:
 * the chain's own (an authentication interceptor refuses the same call) or the gate's.
 */
export async function refuse(
  entry: EngineMethod,
  call: Call,
  request: StartedRequest,
  refusal: unknown,
): Promise<never> {
  call.refusal = refusal;
  const kind = entry.method.methodKind;
  request.message = kind === "unary" ? create(entry.method.input) : none();
  const response = await entry.invoke(request as AnyRequest);
  if (response.stream) response.message[Symbol.asyncIterator]().return?.()?.catch(noop);
  throw refusal;
}

async function* none(): AsyncIterable<never> {}

const noop = () => {};

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
export function asConnectError(err: unknown): ConnectError {
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
            throw asConnectError(err);
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
