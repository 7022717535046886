import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  isMessage,
} from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  createMethodImplSpec,
  createServiceImplSpec,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type StreamRequest,
  type StreamResponse,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { type Call, callKey } from "./call.ts";

export type AnyRequest = UnaryRequest | StreamRequest;
export type AnyResponse = UnaryResponse | StreamResponse;

/** One method the engine serves, with everything that can be worked out once per method. */
export interface EngineMethod {
  readonly service: DescService;
  readonly method: DescMethod;
  /** The request path, "/user.v1.UserService/GetUser". */
  readonly path: string;
  /** Declared `idempotency_level = NO_SIDE_EFFECTS`: Connect may call it with GET. */
  readonly noSideEffects: boolean;
  /**
   * Runs a call through the interceptors to the implementation. The call's own state (see
   * `Call`) travels in the request's context values, never on the request, so an interceptor may
   * hand on a request object it built itself.
   */
  readonly invoke: (req: AnyRequest) => Promise<AnyResponse>;
}

/**
 * Collects what `routes` registers, as connect-node's adapter is given it, and builds each
 * method's interceptor chain once: a call then costs no closure per interceptor.
 */
export function createMethodTable(
  routes: (router: ConnectRouter) => void,
  interceptors: readonly Interceptor[],
): Map<string, EngineMethod> {
  const table = new Map<string, EngineMethod>();
  const add = (service: DescService, spec: MethodImplSpec) => {
    const path = `/${service.typeName}/${spec.method.name}`;
    let invoke = lastStep(service, spec);
    for (let i = interceptors.length - 1; i >= 0; i--) {
      invoke = (interceptors[i] as Interceptor)(invoke as never) as typeof invoke;
    }
    table.set(path, {
      service,
      method: spec.method,
      path,
      noSideEffects: spec.method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS,
      invoke,
    });
  };
  const router: ConnectRouter = {
    // The engine serves the routes itself: connect's universal handlers are never built.
    handlers: [],
    service(service, implementation) {
      const spec = createServiceImplSpec(service, implementation);
      for (const method of Object.values(spec.methods)) add(service, method);
      return router;
    },
    rpc(method, implementation) {
      add(method.parent, createMethodImplSpec(method, implementation));
      return router;
    },
  };
  routes(router);
  return table;
}

/** The end of a method's chain: the implementation, given a context made from the request. */
function lastStep(
  service: DescService,
  spec: MethodImplSpec,
): (req: AnyRequest) => Promise<AnyResponse> {
  const { method } = spec;
  const output = method.output;
  // One object per answer (a spread of a common part would make two).
  const respond = (ctx: HandlerContext, stream: boolean, message: unknown) => ({
    service,
    method,
    header: ctx.responseHeader,
    trailer: ctx.responseTrailer,
    stream,
    message,
  });
  switch (spec.kind) {
    case "unary":
      // A promise and a closure, not an async function's frame: most calls are unary.
      return (req) => {
        let ctx: HandlerContext;
        let result: unknown;
        try {
          ctx = contextOf(req, true);
          result = spec.impl(req.message as never, ctx);
        } catch (err) {
          return Promise.reject(err);
        }
        return Promise.resolve(result).then(
          (value) => respond(ctx, false, normalize(output, value)) as UnaryResponse,
        );
      };
    case "server_streaming":
      return async (req) => {
        const ctx = contextOf(req, true);
        const input = await single(req.message as AsyncIterable<unknown>, "server-streaming");
        return respond(
          ctx,
          true,
          normalizeAll(output, spec.impl(input as never, ctx)),
        ) as StreamResponse;
      };
    case "client_streaming":
      return async (req) => {
        const ctx = contextOf(req, true);
        const result = await spec.impl(req.message as never, ctx);
        return respond(ctx, true, once(normalize(output, result))) as StreamResponse;
      };
    case "bidi_streaming":
      return async (req) => {
        const ctx = contextOf(req, true);
        return respond(
          ctx,
          true,
          normalizeAll(output, spec.impl(req.message as never, ctx)),
        ) as StreamResponse;
      };
  }
}

/**
 * The handler's context, as connect gives it: the request as the interceptors left it (service,
 * headers, signal, context values), and the call's own parts. `forImplementation`: for the
 * implementation itself, which a call refused by the request gate must not reach.
 */
export function contextOf(req: AnyRequest, forImplementation = false): HandlerContext {
  const call = req.contextValues.get(callKey);
  if (call === undefined) {
    throw new ConnectError(
      "the call's state is missing from its context values: an interceptor replaced them",
      Code.Internal,
    );
  }
  // A call the request gate refused never reaches the implementation, whatever the chain did.
  if (forImplementation && call.refusal !== undefined) throw call.refusal;
  return new CallContext(req, call);
}

/**
 * connect's `HandlerContext`, whose signal is the request's, read when the handler reads it (the
 * request's signal is made on first read, an AbortController per call otherwise). A class: an
 * object literal with a getter costs a closure and a slow definition per call (about 0.4 µs).
 */
class CallContext implements HandlerContext {
  readonly method: AnyRequest["method"];
  readonly service: AnyRequest["service"];
  readonly timeoutMs: () => number | undefined;
  readonly requestMethod: string;
  readonly requestHeader: Headers;
  readonly responseHeader: Headers;
  readonly responseTrailer: Headers;
  readonly protocolName: string;
  readonly values: AnyRequest["contextValues"];
  readonly url: string;
  readonly #req: AnyRequest;

  constructor(req: AnyRequest, call: Call) {
    this.method = req.method;
    this.service = req.service;
    this.timeoutMs = call.timeoutMs;
    this.requestMethod = req.requestMethod;
    this.requestHeader = req.header;
    this.responseHeader = call.responseHeader;
    this.responseTrailer = call.responseTrailer;
    this.protocolName = call.protocolName;
    this.values = req.contextValues;
    this.url = req.url;
    this.#req = req;
  }

  get signal(): AbortSignal {
    return this.#req.signal;
  }
}

function normalize(output: DescMessage, message: unknown): unknown {
  return isMessage(message, output) ? message : create(output, message as never);
}

/** A handler's messages as messages of `output`: a handler may yield plain initializers. */
function normalizeAll(
  output: DescMessage,
  messages: AsyncIterable<unknown>,
): AsyncIterable<unknown> {
  return {
    [Symbol.asyncIterator]() {
      const it = messages[Symbol.asyncIterator]();
      const step = (r: IteratorResult<unknown>) =>
        r.done === true || isMessage(r.value, output)
          ? r
          : { done: false, value: create(output, r.value as never) };
      return {
        next: () => it.next().then(step),
        return: (value?: unknown) =>
          it.return?.(value) ?? Promise.resolve({ done: true as const, value }),
        throw: (err?: unknown) => it.throw?.(err) ?? Promise.reject(err),
      };
    },
  };
}

async function* once(message: unknown): AsyncIterable<unknown> {
  yield message;
}

/** The one message of a unary-input stream, as connect checks it. */
async function single(messages: AsyncIterable<unknown>, kind: string): Promise<unknown> {
  const it = messages[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done === true) {
    throw new ConnectError(
      `protocol error: missing input message for ${kind} method`,
      Code.Unimplemented,
    );
  }
  const second = await it.next();
  if (second.done !== true) {
    throw new ConnectError(
      `protocol error: received extra input message for ${kind} method`,
      Code.Unimplemented,
    );
  }
  return first.value;
}
