import type * as http2 from "node:http2";
import {
  type Compression,
  compressedFlag,
  compressionNegotiate,
} from "@connectrpc/connect/protocol";
import { grpcStatusOk, parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { Base64EnvelopeReader } from "./body-readers.ts";
import type { Call } from "./call.ts";
import { asConnectError } from "./call-lifecycle.ts";
import type { EngineContext } from "./engine-context.ts";
import type { Exchange } from "./exchange.ts";
import type { AnyResponse, EngineMethod } from "./method-table.ts";
import { copyHeaders, PlainHeaders } from "./plain-headers.ts";
import { type Answer, envelope, serveCall } from "./serve-call.ts";

/** `application/grpc-web[-text][+proto|+json]`: [, text, json]. */
export const grpcWebContentType =
  /^application\/grpc-web(-text)?(?:\+(?:(json)(?:; ?charset=utf-?8)?|proto))?$/i;

/**
 * Serves one gRPC-Web call (`application/grpc-web`, `+proto`, `+json`, and `-text`, base64 both
 * ways), every call kind but bidi over HTTP/1.1: HTTP 200, the messages, then the status and
 * trailers as a last envelope in the body (flag 0x80), as connect writes them.
 */
export function serveGrpcWeb(
  engine: EngineContext,
  entry: EngineMethod,
  exchange: Exchange,
  text: boolean,
  binary: boolean,
  peer: string,
  url: string,
): void {
  const headers = exchange.headers;
  const responseHeader = new PlainHeaders();
  responseHeader.set(
    "content-type",
    text ? "application/grpc-web-text+proto" : `application/grpc-web+${binary ? "proto" : "json"}`,
  );
  const responseTrailer = new PlainHeaders();
  responseTrailer.set("grpc-status", grpcStatusOk);
  const compression = compressionNegotiate(
    engine.acceptCompression,
    (headers["grpc-encoding"] as string | undefined) ?? null,
    (headers["grpc-accept-encoding"] as string | undefined) ?? null,
    "grpc-accept-encoding",
  );
  if (compression.response !== null) responseHeader.set("grpc-encoding", compression.response.name);
  if (engine.acceptEncoding !== undefined) {
    responseHeader.set("grpc-accept-encoding", engine.acceptEncoding);
  }
  serveCall(
    engine,
    entry,
    exchange,
    {
      protocolName: "grpc-web",
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
      skipFlag: trailerFlag,
      reader: text ? () => new Base64EnvelopeReader(engine.readMaxBytes) : undefined,
    },
    (call) => new GrpcWebAnswer(engine, exchange, call, compression.response, text),
    peer,
    url,
  );
}

class GrpcWebAnswer implements Answer {
  private readonly engine: EngineContext;
  private readonly exchange: Exchange;
  private readonly call: Call;
  private readonly compress: Compression | null;
  private readonly text: boolean;

  constructor(
    engine: EngineContext,
    exchange: Exchange,
    call: Call,
    compress: Compression | null,
    text: boolean,
  ) {
    this.engine = engine;
    this.exchange = exchange;
    this.call = call;
    this.compress = compress;
    this.text = text;
  }

  async unary(response: AnyResponse, data: Uint8Array): Promise<void> {
    const message = await envelope(data, this.compress, this.engine.compressMinBytes);
    const trailer = await this.trailer(response, undefined);
    this.send(response, Buffer.concat([message, trailer]), true);
  }

  async message(response: AnyResponse, data: Uint8Array): Promise<void> {
    const frame = await envelope(data, this.compress, this.engine.compressMinBytes);
    if (!this.send(response, frame, false)) await this.exchange.drained();
  }

  end(response: AnyResponse | undefined, err: unknown): void {
    this.trailer(response, err).then(
      (frame) => this.send(response, frame, true),
      () => this.send(response, new Uint8Array(0), true),
    );
  }

  /** The status and trailers as the body's last envelope. */
  private async trailer(response: AnyResponse | undefined, err: unknown): Promise<Uint8Array> {
    const trailer = response?.trailer ?? this.call.responseTrailer;
    if (err !== undefined) setTrailerStatus(trailer, asConnectError(err));
    const data = trailerSerialize(trailer);
    const compress = this.compress;
    if (compress !== null && data.byteLength >= this.engine.compressMinBytes) {
      return frameOf(trailerFlag | compressedFlag, await compress.compress(data));
    }
    return frameOf(trailerFlag, data);
  }

  /** Writes body bytes (base64 for -text), the headers first; false when the client is behind. */
  private send(response: AnyResponse | undefined, bytes: Uint8Array, last: boolean): boolean {
    const exchange = this.exchange;
    if (exchange.gone) return true;
    if (!exchange.headersSent) {
      const out: http2.OutgoingHttpHeaders = {};
      copyHeaders(response?.header ?? this.call.responseHeader, out);
      exchange.respond(200, out, false);
    }
    const chunk = this.text ? Buffer.from(Buffer.from(bytes).toString("base64"), "latin1") : bytes;
    if (!last) return exchange.write(chunk);
    exchange.end(chunk);
    // A client still sending is told to stop: nothing more of its body is read.
    exchange.stopBody();
    return true;
  }
}

function frameOf(flags: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + data.byteLength);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, data.byteLength);
  out.set(data, 5);
  return out;
}
