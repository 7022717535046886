import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { DescMethod } from "@bufbuild/protobuf";
import type {
  ConnectError,
  ConnectRouter,
  ContextValues,
  HandlerContext,
  Interceptor,
  Transport,
} from "@connectrpc/connect";
import type { Compression } from "@connectrpc/connect/protocol";
import type { CallState, DefaultDeadline } from "./call.ts";
import { dispatch } from "./dispatch.ts";
import { createEngineContext } from "./engine-context.ts";
import { RequestExchange, StreamExchange } from "./exchange.ts";
import {
  createInProcessTransport,
  type InProcessTransportOptions,
} from "./in-process-transport.ts";
import { type InvokeOptions, type InvokeResult, invokeMethod, unknownMethod } from "./invoke.ts";
import { createMethodTable, type EngineMethod } from "./method-table.ts";
import { type Connection, peerOf, urlOf } from "./request-origin.ts";

export interface EngineOptions {
  /** The services and methods to serve, registered as with connect-node's adapter. */
  routes: (router: ConnectRouter) => void;
  /** Interceptors of every call, outermost first. Default none. */
  interceptors?: Interceptor[];
  /**
   * The context values a call starts with, from its headers and its connection's peer address,
   * as connect-node's adapter is given them. Default: empty.
   */
  contextValues?: (req: {
    headers: http2.IncomingHttpHeaders;
    socket: { remoteAddress?: string };
  }) => ContextValues;
  /**
   * Runs on the headers, before any byte of the request body is read; throw (or reject with) a
   * ConnectError to refuse the call unread, for example without a valid token. Default none.
   */
  requestGate?: (context: HandlerContext) => void | Promise<void>;
  /**
   * Asked first about each call, on its method alone: a ConnectError returned refuses the call at
   * once, answered in its protocol, with no context values, no interceptors and no body read, as
   * a malformed timeout is. For load shedding, where a refusal must cost next to nothing and say
   * nothing but why (the request gate's refusals go through the interceptors). Default: every
   * call admitted.
   */
  admit?: (method: DescMethod) => ConnectError | undefined;
  /**
   * Told of each call refused before it reached the interceptors, which never see it: a bad
   * timeout or encoding, a call not admitted, a request body that was too large, malformed,
   * stalled or over a buffer budget (for metrics; `grpc_server_handled_total` does not count
   * them). Default: nothing.
   */
  onRefusal?: (method: DescMethod, error: ConnectError) => void;
  /** The largest message accepted, in bytes, refused at its length prefix. Default 4 MiB. */
  readMaxBytes?: number;
  /** The largest message sent, in bytes. Default 4 MiB. */
  writeMaxBytes?: number;
  /** Compressions offered both ways (gzip: `compressionGzip` from connect-node). Default none. */
  acceptCompression?: Compression[];
  /** Messages smaller than this are sent uncompressed. Default 1024. */
  compressMinBytes?: number;
  /** The longest client deadline honoured, in ms. Default: no limit. */
  maxTimeoutMs?: number;
  /** Request bytes one connection may have buffered at once. Default 16 MiB. */
  bufferedBytesPerConnection?: number;
  /** Request bytes all connections together may have buffered at once. Default 256 MiB. */
  bufferedBytesPerProcess?: number;
  /** How long a request body may go without a byte before the call fails, in ms. Default 30000. */
  bodyIdleTimeoutMs?: number;
  /** Aborts every call in flight with its reason (what clients get): the server is stopping. */
  shutdownSignal?: AbortSignal;
  /**
   * The deadline of a call whose client sets none, by method (worked out once per method): armed
   * on the call's own timer, its signal aborting with `error()` when it passes. Default: none.
   */
  defaultDeadline?: (method: DescMethod) => DefaultDeadline | undefined;
  /**
   * Told of each call as it starts, with its context values: its default deadline (absolute, ms
   * since the epoch), and whether and why it has ended, readable without making its signal (so that
   * an interceptor needs no timer, AbortController or listener of its own). Default: nothing.
   */
  onCallStart?: (values: ContextValues, call: CallState) => void;
}

/** A protocol engine serving Connect routes on `node:http2` streams and `node:http` requests. */
export interface Engine {
  /**
   * Serves an HTTP/2 stream it knows the protocol of and answers true, or leaves the stream
   * untouched and answers false (the caller hands it on: REST, a page, a 404).
   */
  handleStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): boolean;
  /**
   * The same for a `node:http` request (HTTP/1.1, or HTTP/2 through Node's compatibility layer):
   * serves it and answers true, or leaves it and answers false. Headers already set on `res`
   * (CORS, for example) go out with the answer.
   */
  handleRequest(
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ): boolean;
  /** Every method served, by path ("/user.v1.UserService/GetUser"). */
  readonly methods: ReadonlyMap<string, EngineMethod>;
  /**
   * A transport for clients in this process: calls go through the same interceptors as network
   * calls, without a socket or serialization (see `createInProcessTransport`).
   */
  inProcessTransport(options?: InProcessTransportOptions): Transport;
  /**
   * Runs a call of a method (its path, "/user.v1.UserService/GetUser", or its entry in `methods`)
   * on behalf of another protocol, REST, with its message already decoded: the same per-call
   * state, request gate and interceptor chain as a call off the wire (see `invokeMethod`). Never
   * rejects: a failed call answers with its error.
   */
  invoke(method: string | EngineMethod, options: InvokeOptions): Promise<InvokeResult>;
}

/**
 * Serves Connect service implementations directly on HTTP/2 streams and `node:http` requests
 * over gRPC, gRPC-Web (binary and text) and Connect (unary POST and GET, streams), with the same
 * routes, interceptors and handler contexts as connect-node's adapter, and limits at the wire:
 * message size at the length prefix, request bytes buffered per connection and per process, a
 * body idle timeout, deadlines from the headers covering the body, a request gate before the
 * body. What is no call (a REST path, a page) is left to the caller.
 */
export function createEngine(options: EngineOptions): Engine {
  const methods = createMethodTable(options.routes, options.interceptors ?? []);
  const context = createEngineContext(
    {
      readMaxBytes: options.readMaxBytes ?? 4 * 1024 * 1024,
      writeMaxBytes: options.writeMaxBytes ?? 4 * 1024 * 1024,
      compressMinBytes: options.compressMinBytes ?? 1024,
      maxTimeoutMs: options.maxTimeoutMs ?? Number.MAX_SAFE_INTEGER,
      bufferedBytesPerConnection: options.bufferedBytesPerConnection ?? 16 * 1024 * 1024,
      bufferedBytesPerProcess: options.bufferedBytesPerProcess ?? 256 * 1024 * 1024,
      bodyIdleTimeoutMs: options.bodyIdleTimeoutMs ?? 30_000,
    },
    {
      acceptCompression: options.acceptCompression ?? [],
      contextValues: options.contextValues,
      requestGate: options.requestGate,
      shutdownSignal: options.shutdownSignal,
      defaultDeadline: options.defaultDeadline,
      onCallStart: options.onCallStart,
      admit: options.admit,
      onRefusal: options.onRefusal,
    },
  );
  return {
    methods,
    inProcessTransport: (transportOptions) =>
      createInProcessTransport(methods, context, transportOptions),
    invoke(method, invokeOptions) {
      const entry = typeof method === "string" ? methods.get(method) : method;
      if (entry === undefined) return Promise.resolve(unknownMethod(String(method)));
      return invokeMethod(context, entry, invokeOptions);
    },
    handleStream(stream, headers) {
      const path = headers[":path"] ?? "";
      const session = stream.session as Connection | undefined;
      return dispatch(
        context,
        methods,
        new StreamExchange(stream, headers),
        headers[":method"] ?? "",
        path,
        peerOf(session),
        urlOf(session, headers, path),
      );
    },
    handleRequest(req, res) {
      const path = req.url ?? "";
      const exchange = new RequestExchange(req, res);
      const connection = exchange.connection as Connection | undefined;
      return dispatch(
        context,
        methods,
        exchange,
        req.method ?? "",
        path,
        peerOf(connection),
        urlOf(connection, req.headers, path),
      );
    },
  };
}
