import type { Interceptor, Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { createBearerTokenInterceptor, type TokenSource } from "./bearer-token.ts";

/** The wire protocols keel's services speak on one port. */
export type Protocol = "grpc" | "grpc-web" | "connect";

export interface TransportOptions {
  /** Where the service listens, for example `http://127.0.0.1:9090`. */
  baseUrl: string;
  /** Default "grpc". */
  protocol?: Protocol;
  /**
   * The deadline of a call that sets none itself (`{ timeoutMs }` in its call options), in
   * milliseconds. Default 10000; 0 means no deadline.
   */
  timeoutMs?: number;
  /** A bearer token sent as `authorization`, or a function returning the current one. */
  token?: TokenSource;
  /**
   * "2" (the default) multiplexes calls over one HTTP/2 connection and supports every streaming
   * kind. "1.1" serves unary and server-streaming calls for Connect and gRPC-Web; gRPC needs "2".
   */
  httpVersion?: "1.1" | "2";
  /** Connect only: JSON instead of binary protobuf on the wire. Default false. */
  useJson?: boolean;
  /** Largest message sent or accepted, in bytes. Default 4 MiB. */
  maxMessageBytes?: number;
  /** More interceptors, run after the token interceptor. */
  interceptors?: Interceptor[];
}

/** A Connect transport for one of keel's services, with keel's defaults. */
export function createTransport(options: TransportOptions): Transport {
  const protocol = options.protocol ?? "grpc";
  const httpVersion = options.httpVersion ?? "2";
  if (protocol === "grpc" && httpVersion !== "2") {
    throw new Error('the gRPC protocol needs HTTP/2: set httpVersion to "2"');
  }
  const maxMessageBytes = options.maxMessageBytes ?? 4 * 1024 * 1024;
  const interceptors = [
    ...(options.token === undefined ? [] : [createBearerTokenInterceptor(options.token)]),
    ...(options.interceptors ?? []),
  ];
  const timeoutMs = options.timeoutMs ?? 10_000;
  const common = {
    baseUrl: options.baseUrl,
    interceptors,
    readMaxBytes: maxMessageBytes,
    writeMaxBytes: maxMessageBytes,
    ...(timeoutMs > 0 ? { defaultTimeoutMs: timeoutMs } : {}),
  };
  switch (protocol) {
    case "grpc":
      return createGrpcTransport(common);
    case "grpc-web":
      return createGrpcWebTransport({ ...common, httpVersion });
    case "connect":
      return createConnectTransport({
        ...common,
        httpVersion,
        useBinaryFormat: !(options.useJson ?? false),
      });
  }
}
