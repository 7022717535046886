import type { Interceptor, Transport } from "@connectrpc/connect";
import {
  compressionGzip,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  type Http2SessionManager,
} from "@connectrpc/connect-node";
import { createBearerTokenInterceptor, type TokenSource } from "./bearer-token.ts";

/** The wire protocols keel's services speak on one port. */
export type Protocol = "grpc" | "grpc-web" | "connect";

/** How calls travel to an endpoint: protocol, HTTP version, encoding, limits, keepalive. */
export interface ConnectionOptions {
  /** Default "grpc". */
  protocol?: Protocol;
  /**
   * "2" (the default) multiplexes calls over one HTTP/2 connection and supports every streaming
   * kind. "1.1" serves unary and server-streaming calls for Connect and gRPC-Web; gRPC needs "2".
   */
  httpVersion?: "1.1" | "2";
  /** Connect only: JSON instead of binary protobuf on the wire. Default false. */
  useJson?: boolean;
  /** Largest message sent or accepted, in bytes. Default 4 MiB (4194304), as the server's. */
  maxMessageBytes?: number;
  /**
   * Compress requests of 1 KiB and more with gzip. Default false. Compressed responses are
   * accepted either way (gzip and br).
   */
  gzip?: boolean;
  /**
   * HTTP/2 only: while calls are open, send a PING when the connection has been quiet this long,
   * in ms, and close it (failing its calls) when the answer takes longer than
   * `keepaliveTimeoutMs`; an idle connection quiet this long is checked with a PING before it is
   * used again. Finds connections that died silently. 0 turns it off. Default 30000.
   */
  keepaliveIntervalMs?: number;
  /** How long to wait for a PING's answer, in ms. Default 15000. */
  keepaliveTimeoutMs?: number;
  /** For https:// endpoints: whom to trust, and the client's certificate for mutual TLS. */
  tls?: TlsOptions;
}

/** TLS of https:// endpoints, in PEM (text or bytes). */
export interface TlsOptions {
  /** The CAs that may sign the server's certificate. Default: Node's (the Mozilla bundle). */
  ca?: string | Buffer;
  /** The client's certificate chain, sent when the server asks for one (mutual TLS). */
  cert?: string | Buffer;
  /** The private key of `cert`. */
  key?: string | Buffer;
  /**
   * The name the server's certificate must carry. Default: the endpoint's host; for the
   * addresses of a `dns:///name:port` endpoint, `name`.
   */
  servername?: string;
}

export interface TransportOptions extends ConnectionOptions {
  /** Where the service listens, for example `http://127.0.0.1:9090`. */
  baseUrl: string;
  /**
   * The deadline of a call that sets none itself (`{ timeoutMs }` in its call options), in
   * milliseconds. Default 10000; 0 means no deadline.
   */
  timeoutMs?: number;
  /** A bearer token sent as `authorization`, or a function returning the current one. */
  token?: TokenSource;
  /** More interceptors, run after the token interceptor. */
  interceptors?: Interceptor[];
}

/**
 * A plain Connect transport for one endpoint, with keel's defaults: no balancing, retries or
 * circuit breaking (`createClientTransport` adds those).
 */
export function createTransport(options: TransportOptions): Transport {
  if (options.baseUrl.startsWith("dns:")) {
    throw new Error(
      "a dns: target has many endpoints: use createClientTransport (or createUserClient) with it",
    );
  }
  const interceptors = [
    ...(options.token === undefined ? [] : [createBearerTokenInterceptor(options.token)]),
    ...(options.interceptors ?? []),
  ];
  const timeoutMs = options.timeoutMs ?? 10_000;
  return createProtocolTransport(options.baseUrl, options, {
    interceptors,
    ...(timeoutMs > 0 ? { defaultTimeoutMs: timeoutMs } : {}),
  });
}

/** The keepalive options of connect-node's HTTP/2 session manager. */
export function pingOptions(options: ConnectionOptions) {
  const intervalMs = options.keepaliveIntervalMs ?? 30_000;
  return intervalMs > 0
    ? { pingIntervalMs: intervalMs, pingTimeoutMs: options.keepaliveTimeoutMs ?? 15_000 }
    : {};
}

/** Node's TLS options for `options.tls` (those of an HTTP/2 session, and of an HTTPS request). */
export function tlsSessionOptions(options: ConnectionOptions): TlsOptions {
  const { ca, cert, key, servername } = options.tls ?? {};
  return {
    ...(servername === undefined ? {} : { servername }),
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
  };
}

/** The protocol's transport for `baseUrl`, with the connection options applied. */
export function createProtocolTransport(
  baseUrl: string,
  options: ConnectionOptions,
  extra: {
    interceptors?: Interceptor[];
    defaultTimeoutMs?: number;
    sessionManager?: Http2SessionManager | undefined;
  },
): Transport {
  const protocol = options.protocol ?? "grpc";
  const httpVersion = options.httpVersion ?? "2";
  if (protocol === "grpc" && httpVersion !== "2") {
    throw new Error('the gRPC protocol needs HTTP/2: set httpVersion to "2"');
  }
  const maxMessageBytes = options.maxMessageBytes ?? 4 * 1024 * 1024;
  const { sessionManager, ...rest } = extra;
  const common = {
    baseUrl,
    readMaxBytes: maxMessageBytes,
    writeMaxBytes: maxMessageBytes,
    ...(options.gzip === true ? { sendCompression: compressionGzip } : {}),
    ...rest,
  };
  // A session manager of the caller's carries the TLS options itself (see tlsSessionOptions).
  const nodeOptions = options.tls === undefined ? {} : { nodeOptions: tlsSessionOptions(options) };
  const http2Options =
    sessionManager === undefined ? { ...pingOptions(options), ...nodeOptions } : { sessionManager };
  switch (protocol) {
    case "grpc":
      return createGrpcTransport({ ...common, ...http2Options });
    case "grpc-web":
      return httpVersion === "2"
        ? createGrpcWebTransport({ ...common, ...http2Options, httpVersion })
        : createGrpcWebTransport({ ...common, ...nodeOptions, httpVersion });
    case "connect": {
      const useBinaryFormat = !(options.useJson ?? false);
      return httpVersion === "2"
        ? createConnectTransport({ ...common, ...http2Options, httpVersion, useBinaryFormat })
        : createConnectTransport({ ...common, ...nodeOptions, httpVersion, useBinaryFormat });
    }
    default:
      throw new Error(
        `unknown protocol ${JSON.stringify(protocol)}; use grpc, grpc-web or connect`,
      );
  }
}
