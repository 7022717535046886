import { clone, create, type DescMessage, type DescMethod, isMessage } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextValues,
  type Interceptor,
  type StreamResponse,
  type Transport,
  type UnaryResponse,
} from "@connectrpc/connect";
import { runStreamingCall, runUnaryCall } from "@connectrpc/connect/protocol";
import {
  abortWith,
  asConnectError,
  type CallEngine,
  createCall,
  finishing,
  startCall,
} from "./call-lifecycle.ts";
import type { AnyRequest, EngineMethod } from "./method-table.ts";
import { PlainHeaders } from "./plain-headers.ts";

export interface InProcessTransportOptions {
  /** Client interceptors (tracing, metrics), outermost first, as a network transport takes them. */
  interceptors?: Interceptor[];
  /**
   * The address the server's `contextValues` sees as the peer of a call, from the call's client
   * context values; for example the address of the call being served that makes this one.
   * Default "in-process".
   */
  peer?: (clientValues: ContextValues) => string;
}

/**
 * A transport that calls the engine's methods in this process: no socket, no TLS, no
 * serialization, and the very same server interceptor chain a network call gets (authentication
 * with the headers it is given, deadlines, tracing, request ids, rate limits, audit). Messages are
 * copied on the way in and out, so that neither side sees the other change them. Errors reach the
 * caller as a network caller gets them: a ConnectError as it was thrown, anything else as a bare
 * INTERNAL "internal error".
 */
export function createInProcessTransport(
  methods: ReadonlyMap<string, EngineMethod>,
  engine: CallEngine,
  options: InProcessTransportOptions = {},
): Transport {
  const interceptors = options.interceptors ?? [];
  const peer = options.peer ?? (() => "in-process");
  const find = (method: DescMethod): EngineMethod => {
    const entry = methods.get(`/${method.parent.typeName}/${method.name}`);
    if (entry === undefined) {
      throw new ConnectError(
        `unknown method ${method.name} for service ${method.parent.typeName}`,
        Code.Unimplemented,
      );
    }
    return entry;
  };
  /** The server side of a call: its own state, context values and request, then the chain. */
  const serve = async (
    entry: EngineMethod,
    clientReq: {
      header: Headers;
      signal: AbortSignal;
      contextValues: ContextValues;
      url: string;
    },
    message: unknown,
    timeoutMs: number | undefined,
  ) => {
    const headers: Record<string, string> = {};
    clientReq.header.forEach((value, key) => {
      headers[key] = value;
    });
    const call = createCall(engine, entry, "in-process", timeoutMs);
    const request = startCall(engine, entry, call, {
      headers,
      peer: peer(clientReq.contextValues),
      url: clientReq.url,
      requestMethod: "POST",
      header: PlainHeaders.fromHttp2(headers),
    });
    request.message = message;
    abortWith(call, clientReq.signal);
    try {
      return { call, response: await entry.invoke(request as AnyRequest) };
    } catch (err) {
      call.abort(err);
      throw asConnectError(err);
    }
  };

  /** What the client's interceptors get, but the message and the call kind. */
  const clientRequest = (
    method: DescMethod,
    entry: EngineMethod,
    header: ConstructorParameters<typeof Headers>[0],
    contextValues: ContextValues | undefined,
  ) => ({
    service: method.parent,
    method,
    requestMethod: "POST",
    url: entry.path,
    header: new Headers(header),
    contextValues: contextValues ?? createContextValues(),
  });

  return {
    async unary(method, signal, timeoutMs, header, input, contextValues) {
      const entry = find(method);
      return runUnaryCall({
        interceptors,
        signal,
        timeoutMs,
        req: {
          ...clientRequest(method, entry, header, contextValues),
          stream: false,
          method,
          message: input,
        },
        next: async (req) => {
          const { call, response } = await serve(
            entry,
            req,
            copy(method.input, req.message),
            timeoutMs,
          );
          call.abort();
          if (response.stream)
            throw new ConnectError("a unary method answered a stream", Code.Internal);
          return {
            stream: false,
            service: method.parent,
            method,
            header: copyOf(response.header),
            trailer: copyOf(response.trailer),
            message: copy(method.output, response.message),
          } as UnaryResponse<never, never>;
        },
      }) as never;
    },
    async stream(method, signal, timeoutMs, header, input, contextValues) {
      const entry = find(method);
      return runStreamingCall({
        interceptors,
        signal,
        timeoutMs,
        req: {
          ...clientRequest(method, entry, header, contextValues),
          stream: true,
          method,
          message: input,
        },
        next: async (req) => {
          const messages = copyAll(method.input, req.message);
          const { call, response } = await serve(entry, req, messages, timeoutMs);
          if (!response.stream)
            throw new ConnectError("a streaming method answered once", Code.Internal);
          return {
            stream: true,
            service: method.parent,
            method,
            header: copyOf(response.header),
            trailer: copyOf(response.trailer),
            message: finishing(copyAll(method.output, response.message), call),
          } as StreamResponse<never, never>;
        },
      }) as never;
    },
  };
}

function copy(desc: DescMessage, message: unknown): never {
  return (
    isMessage(message, desc) ? clone(desc, message) : create(desc, message as never)
  ) as never;
}

function copyOf(headers: Headers): Headers {
  return new Headers(headers);
}

async function* copyAll(desc: DescMessage, messages: AsyncIterable<unknown>): AsyncIterable<never> {
  for await (const message of messages) yield copy(desc, message);
}
