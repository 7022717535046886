import type { Compression } from "@connectrpc/connect/protocol";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { BodyAnswer } from "./body-answer.ts";
import { Base64EnvelopeReader } from "./body-readers.ts";
import type { Call } from "./call.ts";
import { asConnectError } from "./call-lifecycle.ts";
import type { EngineContext } from "./engine-context.ts";
import type { Exchange } from "./exchange.ts";
import { grpcCallStart } from "./grpc.ts";
import type { AnyResponse, EngineMethod } from "./method-table.ts";
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
  const start = grpcCallStart(
    engine,
    exchange,
    "grpc-web",
    binary,
    text ? "application/grpc-web-text+proto" : `application/grpc-web+${binary ? "proto" : "json"}`,
  );
  start.skipFlag = trailerFlag;
  if (text) start.reader = () => new Base64EnvelopeReader(engine.readMaxBytes);
  const compress = start.compress;
  serveCall(
    engine,
    entry,
    exchange,
    start,
    (call) => new GrpcWebAnswer(engine, exchange, call, compress, text),
    peer,
    url,
  );
}

class GrpcWebAnswer extends BodyAnswer implements Answer {
  private readonly text: boolean;

  constructor(
    engine: EngineContext,
    exchange: Exchange,
    call: Call,
    compress: Compression | null,
    text: boolean,
  ) {
    super(engine, exchange, call, compress);
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
  private trailer(response: AnyResponse | undefined, err: unknown): Promise<Uint8Array> {
    const trailer = response?.trailer ?? this.call.responseTrailer;
    if (err !== undefined) setTrailerStatus(trailer, asConnectError(err));
    const data = trailerSerialize(trailer);
    return Promise.resolve(
      envelope(data, this.compress, this.engine.compressMinBytes, trailerFlag),
    );
  }

  /** Writes body bytes (base64 for -text), the headers first; false when the client is behind. */
  private send(response: AnyResponse | undefined, bytes: Uint8Array, last: boolean): boolean {
    if (!this.head(response)) return true;
    const chunk = this.text ? Buffer.from(Buffer.from(bytes).toString("base64"), "latin1") : bytes;
    if (!last) return this.exchange.write(chunk);
    this.last(chunk);
    return true;
  }
}
