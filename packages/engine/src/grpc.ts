import type * as http2 from "node:http2";
import { compressionNegotiate } from "@connectrpc/connect/protocol";
import {
  contentTypeJson,
  contentTypeProto,
  grpcStatusOk,
  parseTimeout,
  setTrailerStatus,
} from "@connectrpc/connect/protocol-grpc";
import type { Call } from "./call.ts";
import { asConnectError } from "./call-lifecycle.ts";
import type { EngineContext } from "./engine-context.ts";
import { type Exchange, rawFields } from "./exchange.ts";
import type { AnyResponse, EngineMethod } from "./method-table.ts";
import { appendHeaders, copyHeaders, PlainHeaders } from "./plain-headers.ts";
import { type Answer, type CallStart, envelope, serveCall } from "./serve-call.ts";

/**
 * Serves one gRPC call (`application/grpc`, `+proto`, `+json`), every call kind: the status in
 * HTTP trailers (connect's encoding of codes, messages and details); headers, message and
 * trailers in one write for a unary answer; an error before any message answered trailers-only.
 */
export function serveGrpc(
  engine: EngineContext,
  entry: EngineMethod,
  exchange: Exchange,
  binary: boolean,
  peer: string,
  url: string,
): void {
  const start = grpcCallStart(
    engine,
    exchange,
    "grpc",
    binary,
    binary ? contentTypeProto : contentTypeJson,
  );
  const compress = start.compress;
  serveCall(
    engine,
    entry,
    exchange,
    start,
    (call) => new GrpcAnswer(engine, exchange, call, compress),
    peer,
    url,
  );
}

/**
 * What gRPC and gRPC-Web read the same way off a request: the timeout (`grpc-timeout`), the
 * compressions (`grpc-encoding`, `grpc-accept-encoding`), and the response's first headers and
 * trailers.
 */
export function grpcCallStart(
  engine: EngineContext,
  exchange: Exchange,
  protocolName: "grpc" | "grpc-web",
  binary: boolean,
  contentType: string,
): CallStart {
  const headers = exchange.headers;
  const responseHeader = new PlainHeaders();
  responseHeader.setTrusted("content-type", contentType);
  const responseTrailer = new PlainHeaders(okTrailer);
  const compression = compressionNegotiate(
    engine.acceptCompression,
    (headers["grpc-encoding"] as string | undefined) ?? null,
    (headers["grpc-accept-encoding"] as string | undefined) ?? null,
    "grpc-accept-encoding",
  );
  if (compression.response !== null) {
    responseHeader.setTrusted("grpc-encoding", compression.response.name);
  }
  // gRPC's Message-Accept-Encoding: without it, grpc's C-core takes the server to accept identity
  // only (and, tracing compression, logs every gzipped answer as a violation).
  if (engine.acceptEncoding !== undefined) {
    responseHeader.setTrusted("grpc-accept-encoding", engine.acceptEncoding);
  }
  return {
    protocolName,
    binary,
    timeout: parseTimeout(
      (headers["grpc-timeout"] as string | undefined) ?? null,
      engine.maxTimeoutMs,
    ),
    decompress: compression.request,
    compress: compression.response,
    compressionError: compression.error,
    requestMethod: "POST",
    responseHeader,
    responseTrailer,
  };
}

/** The trailer a call's context starts with, as connect's: OK until an error says otherwise. */
const okTrailer = Object.freeze({ "grpc-status": grpcStatusOk });

class GrpcAnswer implements Answer {
  private readonly engine: EngineContext;
  private readonly exchange: Exchange;
  private readonly call: Call;
  private readonly compress: ReturnType<typeof compressionNegotiate>["response"];

  constructor(
    engine: EngineContext,
    exchange: Exchange,
    call: Call,
    compress: ReturnType<typeof compressionNegotiate>["response"],
  ) {
    this.engine = engine;
    this.exchange = exchange;
    this.call = call;
    this.compress = compress;
  }

  unary(response: AnyResponse, data: Uint8Array): void | Promise<void> {
    const frame = envelope(data, this.compress, this.engine.compressMinBytes);
    if (frame instanceof Promise) return frame.then((f) => this.finish(response, undefined, f));
    this.finish(response, undefined, frame);
  }

  message(response: AnyResponse, data: Uint8Array): void | Promise<void> {
    const frame = envelope(data, this.compress, this.engine.compressMinBytes);
    if (frame instanceof Promise) return frame.then((f) => this.write(response, f));
    return this.write(response, frame);
  }

  end(response: AnyResponse | undefined, err: unknown): void {
    this.finish(response, err);
  }

  private write(response: AnyResponse, frame: Uint8Array): void | Promise<void> {
    const exchange = this.exchange;
    if (exchange.gone) return;
    if (!exchange.headersSent)
      exchange.respond(200, appendHeaders(response.header, []), false, true);
    if (!exchange.write(frame)) return exchange.drained();
  }

  /**
   * The response headers (unless sent), the last message (if any) and the trailers with the
   * status of `err` (OK when undefined).
   */
  private finish(response: AnyResponse | undefined, err: unknown, frame?: Uint8Array): void {
    const exchange = this.exchange;
    if (exchange.gone) return;
    const trailers: http2.OutgoingHttpHeaders = {};
    copyHeaders(response?.trailer ?? this.call.responseTrailer, trailers);
    if (err !== undefined) {
      copyHeaders(setTrailerStatus(new PlainHeaders(), asConnectError(err)), trailers);
    } else {
      trailers["grpc-status"] = grpcStatusOk;
    }
    const header = response?.header ?? this.call.responseHeader;
    if (!exchange.headersSent) {
      if (frame === undefined && err !== undefined) {
        // Trailers-only: one HEADERS frame with the status, ending the stream; a client still
        // sending is told to stop.
        const all: http2.OutgoingHttpHeaders = {};
        copyHeaders(header, all);
        Object.assign(all, trailers);
        exchange.respond(200, rawFields(all), true);
        exchange.stopBody();
        return;
      }
      exchange.respond(200, appendHeaders(header, []), false, true);
    }
    exchange.end(frame, trailers);
  }
}
