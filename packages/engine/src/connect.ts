import { base64Decode } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  compressedFlag,
  compressionNegotiate,
  mergeNonProtocolHeaders,
} from "@connectrpc/connect/protocol";
import {
  codeToHttpStatus,
  contentTypeStreamJson,
  contentTypeStreamProto,
  contentTypeUnaryJson,
  contentTypeUnaryProto,
  createEndStreamSerialization,
  endStreamFlag,
  errorToJsonBytes,
  parseTimeout,
} from "@connectrpc/connect/protocol-connect";
import { BodyAnswer } from "./body-answer.ts";
import { WholeBodyReader } from "./body-readers.ts";
import { asConnectError } from "./call-lifecycle.ts";
import type { EngineContext } from "./engine-context.ts";
import type { Exchange, RawHeaders } from "./exchange.ts";
import type { AnyResponse, EngineMethod } from "./method-table.ts";
import { appendHeaders, PlainHeaders } from "./plain-headers.ts";
import { type Answer, type CallStart, envelope, serveCall } from "./serve-call.ts";

/** `application/[connect+](json|proto)`: [, connect+ (a stream), json]. */
export const connectContentType =
  /^application\/(connect\+)?(?:(json)(?:; ?charset=utf-?8)?|proto)$/i;

const endStream = createEndStreamSerialization({});

/** What a Connect request asks for, besides its method. */
export interface ConnectRequest {
  /** A streaming content type (`application/connect+…`). */
  stream: boolean;
  binary: boolean;
  /** A unary GET, its message in the query (`?encoding=…&message=…`). */
  get?: URLSearchParams;
}

/**
 * Serves one Connect call: a unary POST (the message as the body, errors as JSON with an HTTP
 * status), a unary GET of a method without side effects (the message in the query), or a stream
 * (`application/connect+proto|json`, enveloped both ways, the status and trailers in an
 * end-of-stream message), with connect's encodings, codes and headers.
 */
export function serveConnect(
  engine: EngineContext,
  entry: EngineMethod,
  exchange: Exchange,
  request: ConnectRequest,
  peer: string,
  url: string,
): void {
  const headers = exchange.headers;
  const header = (name: string) => (headers[name] as string | undefined) ?? null;
  const responseHeader = new PlainHeaders();
  const timeout = parseTimeout(header("connect-timeout-ms"), engine.maxTimeoutMs);
  // What a unary and a streaming call start with alike.
  const common = (
    compression: ReturnType<typeof compressionNegotiate>,
    requestMethod: string,
  ): CallStart => ({
    protocolName: "connect",
    binary: request.binary,
    timeout,
    decompress: compression.request,
    compress: compression.response,
    compressionError: compression.error,
    requestMethod,
    responseHeader,
    responseTrailer: new PlainHeaders(),
  });
  let start: CallStart;
  if (request.stream) {
    responseHeader.setTrusted(
      "content-type",
      request.binary ? contentTypeStreamProto : contentTypeStreamJson,
    );
    const compression = compressionNegotiate(
      engine.acceptCompression,
      header("connect-content-encoding"),
      header("connect-accept-encoding"),
      "connect-accept-encoding",
    );
    if (compression.response !== null) {
      responseHeader.setTrusted("connect-content-encoding", compression.response.name);
    }
    start = { ...common(compression, "POST"), skipFlag: endStreamFlag };
  } else {
    responseHeader.setTrusted(
      "content-type",
      request.binary ? contentTypeUnaryProto : contentTypeUnaryJson,
    );
    const query = request.get;
    const compression = compressionNegotiate(
      engine.acceptCompression,
      query === undefined ? header("content-encoding") : query.get("compression"),
      header("accept-encoding"),
      "accept-encoding",
    );
    const flags = compression.request === null ? 0 : compressedFlag;
    start = {
      ...common(compression, query === undefined ? "POST" : "GET"),
      ...(query === undefined
        ? {
            reader: () =>
              new WholeBodyReader(
                engine.readMaxBytes,
                header("content-length") ?? undefined,
                flags,
              ),
          }
        : { input: () => queryMessage(query) }),
    };
  }
  const compress = start.compress;
  serveCall(
    engine,
    entry,
    exchange,
    start,
    (call) =>
      request.stream
        ? new StreamAnswer(engine, exchange, call, compress)
        : new UnaryAnswer(engine, exchange, call, compress),
    peer,
    url,
  );
}

/** The message of a GET: `message`, base64 (URL-safe or not) when `base64=1`, else UTF-8. */
function queryMessage(query: URLSearchParams): Uint8Array {
  const message = query.get("message") ?? "";
  if (query.get("base64") !== "1") return new TextEncoder().encode(message);
  try {
    return base64Decode(message);
  } catch {
    throw new ConnectError("protocol error: the message is not base64", Code.InvalidArgument);
  }
}

/** A unary answer: the message as the body, or the error as JSON with its HTTP status. */
class UnaryAnswer extends BodyAnswer implements Answer {
  unary(response: AnyResponse, data: Uint8Array): void | Promise<void> {
    return this.send(200, response.header, response.trailer, data);
  }

  message(): void {
    throw new ConnectError("a unary answer has one message", Code.Internal);
  }

  end(response: AnyResponse | undefined, err: unknown): void {
    const error = asConnectError(err);
    const header = response?.header ?? this.call.responseHeader;
    header.set("content-type", contentTypeUnaryJson);
    if (!error.isWireError) mergeNonProtocolHeaders(header, error.metadata);
    const sent = this.send(
      codeToHttpStatus(error.code),
      header,
      response?.trailer ?? this.call.responseTrailer,
      errorToJsonBytes(error, {}),
    );
    if (sent !== undefined) sent.catch(() => {});
  }

  /** The answer (compressed when it should be: a promise only then); see `muxed` for headers. */
  private send(
    status: number,
    header: Headers,
    trailer: Headers,
    data: Uint8Array,
  ): void | Promise<void> {
    const compress = this.compress;
    if (compress !== null && data.byteLength >= this.engine.compressMinBytes) {
      return compress.compress(data).then((body) => {
        header.set("content-encoding", compress.name);
        this.write(status, header, trailer, body);
      });
    }
    this.write(status, header, trailer, data);
  }

  private write(status: number, header: Headers, trailer: Headers, body: Uint8Array): void {
    const exchange = this.exchange;
    if (exchange.gone) return;
    const out = muxed(header, trailer);
    out.push("content-length", String(body.byteLength));
    exchange.respond(status, out, false);
    this.last(body);
  }
}

/**
 * connect's `trailerMux` written straight into raw fields: the headers, then each trailer as a
 * `trailer-` header (connect's copies the headers into a new Fetch `Headers` per answer).
 */
function muxed(header: Headers, trailer: Headers): RawHeaders {
  const out = appendHeaders(header, []);
  const trailers = appendHeaders(trailer, []);
  for (let i = 0; i + 1 < trailers.length; i += 2) {
    out.push(`trailer-${trailers[i] as string}`, trailers[i + 1] as string);
  }
  return out;
}

/** A streamed answer: enveloped messages, then the status and trailers as an end-of-stream one. */
class StreamAnswer extends BodyAnswer implements Answer {
  unary(response: AnyResponse, data: Uint8Array): Promise<void> {
    return this.message(response, data).then(() => this.end(response, undefined));
  }

  async message(response: AnyResponse, data: Uint8Array): Promise<void> {
    const frame = await envelope(data, this.compress, this.engine.compressMinBytes);
    if (!this.write(response, frame)) await this.exchange.drained();
  }

  end(response: AnyResponse | undefined, err: unknown): void {
    const data = endStream.serialize({
      metadata: response?.trailer ?? this.call.responseTrailer,
      ...(err === undefined ? {} : { error: asConnectError(err) }),
    } as never);
    Promise.resolve(
      envelope(data, this.compress, this.engine.compressMinBytes, endStreamFlag),
    ).then(
      (frame) => {
        if (this.head(response)) this.last(frame);
      },
      () => {},
    );
  }

  private write(response: AnyResponse | undefined, frame: Uint8Array): boolean {
    return this.head(response) ? this.exchange.write(frame) : true;
  }
}
