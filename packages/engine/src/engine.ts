import type * as http2 from "node:http2";
import type { DescMethod } from "@bufbuild/protobuf";
import type {
  ConnectRouter,
  ContextValues,
  HandlerContext,
  Interceptor,
  Transport,
} from "@connectrpc/connect";
import type { Compression } from "@connectrpc/connect/protocol";
import { contentTypeRegExp } from "@connectrpc/connect/protocol-grpc";
import type { DefaultDeadline } from "./call.ts";
import { createEngineContext } from "./engine-context.ts";
import { serveGrpc } from "./grpc.ts";
import {
  createInProcessTransport,
  type InProcessTransportOptions,
} from "./in-process-transport.ts";
import { type InvokeOptions, type InvokeResult, invokeMethod, unknownMethod } from "./invoke.ts";
import { createMethodTable, type EngineMethod } from "./method-table.ts";

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
   * Told of each call's default deadline (absolute, ms since the epoch) with its context values,
   * so that an interceptor can know it without a timer of its own. Default: nothing.
   */
  onDefaultDeadline?: (values: ContextValues, deadline: number) => void;
}

/** A protocol engine serving Connect routes on `node:http2` streams. */
export interface Engine {
  /**
   * Serves an HTTP/2 stream it knows the protocol of and answers true, or leaves the stream
   * untouched and answers false (the caller hands it on).
   */
  handleStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): boolean;
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

/** The answer to a gRPC call of a method not served: HTTP 200, grpc-status 12, grpc-go's words. */
const unknownMethodTrailers = (path: string): http2.OutgoingHttpHeaders => {
  // The path is the client's: echoed in part only (HTTP/2 lets headers reach 16 KiB and more).
  const shown = path.length > 200 ? `${path.slice(0, 200)}…` : path;
  const [, service = "", name = ""] = /^\/([^/]*)\/?(.*)$/s.exec(shown) ?? [];
  return {
    ":status": 200,
    "content-type": "application/grpc",
    "grpc-status": "12",
    "grpc-message": encodeURIComponent(
      name === "" ? `unknown service ${service}` : `unknown method ${name} for service ${service}`,
    ),
  };
};

// A session's peer address, read once per connection (the session's socket is a proxy object),
// and the origin of its requests, worked out once per distinct `:authority`.
const peerAddress = Symbol("keel.peerAddress");
const origins = Symbol("keel.origins");
type AddressedSession = http2.ServerHttp2Session & {
  [peerAddress]?: string;
  [origins]?: Map<string, string>;
};

/** The request's URL as connect-node gives it: scheme, authority and path, normalized by URL. */
function urlOf(session: AddressedSession | undefined, headers: http2.IncomingHttpHeaders): string {
  const path = headers[":path"] ?? "";
  const authority = headers[":authority"] ?? headers.host ?? "";
  if (session === undefined) return path;
  let known = session[origins];
  if (known === undefined) {
    known = new Map();
    session[origins] = known;
  }
  let origin = known.get(authority);
  if (origin === undefined) {
    const scheme = (session.socket as { encrypted?: boolean } | undefined)?.encrypted
      ? "https"
      : "http";
    try {
      origin = new URL(`${scheme}://${authority}`).origin;
    } catch {
      origin = `${scheme}://${authority}`;
    }
    if (known.size < 16) known.set(authority, origin);
  }
  return origin + path;
}

function peerOf(session: AddressedSession | undefined): string {
  if (session === undefined) return "";
  let address = session[peerAddress];
  if (address === undefined) {
    address = session.socket?.remoteAddress ?? "";
    session[peerAddress] = address;
  }
  return address;
}

/**
 * Serves Connect service implementations directly on HTTP/2 streams, with the same routes,
 * interceptors and handler contexts as connect-node's adapter, and limits at the wire: message
 * size at the length prefix, request bytes buffered per connection and per process, a body idle
 * timeout, deadlines from the headers covering the body, a request gate before the body. This
 * version serves gRPC (`application/grpc`, `+proto`, `+json`), every call kind; other protocols are
 * left to the caller (`handleStream` answers false).
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
    options.acceptCompression ?? [],
    options.contextValues,
    options.requestGate,
    options.shutdownSignal,
    options.defaultDeadline,
    options.onDefaultDeadline,
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
      const contentType = headers["content-type"];
      if (contentType === undefined || !contentTypeRegExp.test(contentType)) return false;
      const binary = !contentType.endsWith("+json");
      const path = headers[":path"] ?? "";
      const entry = methods.get(path);
      if (entry === undefined || headers[":method"] !== "POST") {
        stream.on("error", () => {});
        if (entry === undefined) stream.respond(unknownMethodTrailers(path), { endStream: true });
        else stream.respond({ ":status": 405, allow: "POST" }, { endStream: true });
        return true;
      }
      const session = stream.session as AddressedSession | undefined;
      serveGrpc(context, entry, stream, headers, binary, peerOf(session), urlOf(session, headers));
      return true;
    },
  };
}
