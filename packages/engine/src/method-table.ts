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
import { callKey } from "./call.ts";

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
  const respond = (ctx: HandlerContext) => ({
    service,
    method,
    header: ctx.responseHeader,
    trailer: ctx.responseTrailer,
  });
  switch (spec.kind) {
    case "unary":
      return async (req) => {
        const ctx = contextOf(req, true);
        const result = await spec.impl(req.message as never, ctx);
        return {
          ...respond(ctx),
          stream: false,
          message: normalize(output, result),
        } as UnaryResponse;
      };
    case "server_streaming":
      return async (req) => {
        const ctx = contextOf(req, true);
        const input = await single(req.message as AsyncIterable<unknown>, "server-streaming");
        return {
          ...respond(ctx),
          stream: true,
          message: normalizeAll(output, spec.impl(input as never, ctx)),
        } as StreamResponse;
      };
    case "client_streaming":
      return async (req) => {
        const ctx = contextOf(req, true);
        const result = await spec.impl(req.message as never, ctx);
        return {
          ...respond(ctx),
          stream: true,
          message: once(normalize(output, result)),
        } as StreamResponse;
      };
    case "bidi_streaming":
      return async (req) => {
        const ctx = contextOf(req, true);
        return {
          ...respond(ctx),
          stream: true,
          message: normalizeAll(output, spec.impl(req.message as never, ctx)),
        } as StreamResponse;
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
  return {
    method: req.method,
    service: req.service,
    signal: req.signal,
    timeoutMs: call.timeoutMs,
    requestMethod: req.requestMethod,
    requestHeader: req.header,
    responseHeader: call.responseHeader,
    responseTrailer: call.responseTrailer,
    protocolName: call.protocolName,
    values: req.contextValues,
    url: req.url,
  };
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
