import * as http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { compressedFlag, compressionNegotiate, encodeEnvelope } from "@connectrpc/connect/protocol";
import {
  contentTypeJson,
  contentTypeProto,
  grpcStatusOk,
  parseTimeout,
  setTrailerStatus,
} from "@connectrpc/connect/protocol-grpc";
import type { Call } from "./call.ts";
import { one, type StartedRequest, startCall } from "./call-lifecycle.ts";
import type { EngineContext } from "./engine-context.ts";
import type { Envelope } from "./envelope-reader.ts";
import { type AnyRequest, type AnyResponse, contextOf, type EngineMethod } from "./method-table.ts";
import { copyHeaders, PlainHeaders } from "./plain-headers.ts";
import { RequestBody } from "./request-body.ts";

const noop = () => {};

/**
 * Serves one gRPC call (`application/grpc`, `+proto`, `+json`) on an HTTP/2 stream, every call
 * kind: the deadline from `grpc-timeout` starts at the headers and covers reading the body; the
 * request gate runs before any body byte is read; messages are read as envelopes within the
 * limits and handed to the method's interceptor chain; answers are written as they come, with
 * headers, message and trailers in one write for a unary call, and the status in the trailers
 * (connect's encoding of codes, messages and details).
 */
export function serveGrpc(
  engine: EngineContext,
  entry: EngineMethod,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  binary: boolean,
  peer: string,
  url: string,
): void {
  // Without a listener, a stream error (a reset with an error code) would be thrown.
  stream.on("error", noop);
  const timeout = parseTimeout(
    (headers["grpc-timeout"] as string | undefined) ?? null,
    engine.maxTimeoutMs,
  );
  const responseHeader = new PlainHeaders();
  responseHeader.set("content-type", binary ? contentTypeProto : contentTypeJson);
  const responseTrailer = new PlainHeaders();
  responseTrailer.set("grpc-status", grpcStatusOk);
  const compression = compressionNegotiate(
    engine.acceptCompression,
    (headers["grpc-encoding"] as string | undefined) ?? null,
    (headers["grpc-accept-encoding"] as string | undefined) ?? null,
    "grpc-accept-encoding",
  );
  if (compression.response !== null) responseHeader.set("grpc-encoding", compression.response.name);
  // gRPC's Message-Accept-Encoding: without it, grpc's C-core takes the server to accept identity
  // only (and, tracing compression, logs every gzipped answer as a violation).
  if (engine.acceptEncoding !== undefined) {
    responseHeader.set("grpc-accept-encoding", engine.acceptEncoding);
  }
  const { call, request } = startCall(engine, entry, {
    protocolName: "grpc",
    timeoutMs: timeout.timeoutMs,
    headers,
    peer,
    url,
    requestMethod: "POST",
    header: PlainHeaders.fromHttp2(headers),
    responseHeader,
    responseTrailer,
  });
  const early = timeout.error ?? compression.error;
  if (early !== undefined) {
    finish(stream, call, undefined, early);
    return;
  }
  // The client resetting the stream before the answer cancels the call.
  const onClose = () =>
    call.abort(new ConnectError("the client cancelled the call", Code.Canceled));
  stream.on("close", onClose);
  call.onAbort(() => stream.off("close", onClose));
  run(engine, entry, stream, call, request, {
    binary,
    decompress: compression.request,
    compress: compression.response,
  }).catch(noop);
}

interface CallParts {
  binary: boolean;
  decompress: ReturnType<typeof compressionNegotiate>["request"];
  compress: ReturnType<typeof compressionNegotiate>["response"];
}

async function run(
  engine: EngineContext,
  entry: EngineMethod,
  stream: http2.ServerHttp2Stream,
  call: Call,
  request: StartedRequest,
  parts: CallParts,
): Promise<void> {
  const { method } = entry;
  const serialization = engine.serialization(entry);
  const parse = serialization.getI(parts.binary);
  const serialize = serialization.getO(parts.binary);
  try {
    if (engine.requestGate !== undefined) {
      // The context a handler would get, of the call as it arrived.
      await engine.requestGate(contextOf(request as AnyRequest));
    }
    const body = new RequestBody(stream, call, engine.bodyOptions(stream.session));
    const decode = async (envelope: Envelope): Promise<unknown> => {
      let data = envelope.data;
      if ((envelope.flags & compressedFlag) === compressedFlag) {
        if (parts.decompress === null) {
          throw new ConnectError(
            "received compressed envelope, but do not know how to decompress",
            Code.Internal,
          );
        }
        data = await parts.decompress.decompress(data, engine.readMaxBytes);
      }
      return parse.parse(data);
    };
    const unaryInput = method.methodKind === "unary" || method.methodKind === "server_streaming";
    if (unaryInput) {
      const envelopes = await body.all();
      const kind = method.methodKind === "unary" ? "unary" : "server-streaming";
      if (envelopes.length === 0) {
        throw new ConnectError(
          `protocol error: missing input message for ${kind} method`,
          Code.Unimplemented,
        );
      }
      if (envelopes.length > 1) {
        throw new ConnectError(
          `protocol error: received extra input message for ${kind} method`,
          Code.Unimplemented,
        );
      }
      const input = await decode(envelopes[0] as Envelope);
      request.message = method.methodKind === "unary" ? input : one(input);
    } else {
      request.message = mapAsync(body, decode);
    }
    const response = await entry.invoke(request as AnyRequest);
    if (!response.stream) {
      let frame = envelope(serialize.serialize(response.message as never), parts.compress, engine);
      if (frame instanceof Promise) frame = await frame;
      finish(stream, call, response, undefined, frame);
      return;
    }
    await pump(stream, call, response, serialize, parts.compress, engine);
  } catch (err) {
    finish(stream, call, undefined, err);
  }
}

/** One framed message; a promise only when it is compressed (no microtask per plain message). */
function envelope(
  data: Uint8Array,
  compress: CallParts["compress"],
  engine: EngineContext,
): Uint8Array | Promise<Uint8Array> {
  if (compress !== null && data.byteLength >= engine.compressMinBytes) {
    return compress.compress(data).then((zipped) => encodeEnvelope(compressedFlag, zipped));
  }
  return encodeEnvelope(0, data);
}

/**
 * Writes a streamed answer's messages as they come, waiting when the client reads slower than the
 * handler writes; headers go with the first message, the status in the trailers.
 */
async function pump(
  stream: http2.ServerHttp2Stream,
  call: Call,
  response: AnyResponse & { stream: true },
  serialize: { serialize(message: unknown): Uint8Array },
  compress: CallParts["compress"],
  engine: EngineContext,
): Promise<void> {
  const it = response.message[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      const step = await it.next();
      if (step.done === true) break;
      let frame = envelope(serialize.serialize(step.value), compress, engine);
      if (frame instanceof Promise) frame = await frame;
      if (stream.destroyed || stream.closed) return;
      if (!stream.headersSent)
        stream.respond(responseHeaders(response.header), { waitForTrailers: true });
      if (!stream.write(frame)) await drained(stream);
    }
    finished = true;
    finish(stream, call, response, undefined);
  } catch (err) {
    finished = true;
    finish(stream, call, response, err);
  } finally {
    // Stopped early (the client went away): let the handler's generator clean up.
    if (!finished) it.return?.()?.catch(noop);
  }
}

/**
 * Ends the call: the response headers (unless sent), the last message (if any) and the trailers
 * with the status of `err` (OK when undefined); an error that is not a ConnectError is answered as
 * a bare "internal error", as connect does. Then the call's signal is aborted.
 */
function finish(
  stream: http2.ServerHttp2Stream,
  call: Call,
  response: AnyResponse | undefined,
  err: unknown,
  frame?: Uint8Array,
): void {
  const header = response?.header ?? call.responseHeader;
  const trailer = response?.trailer ?? call.responseTrailer;
  if (!(stream.destroyed || stream.closed)) {
    const trailers: http2.OutgoingHttpHeaders = {};
    copyHeaders(trailer, trailers);
    if (err !== undefined) {
      const error =
        err instanceof ConnectError
          ? err
          : new ConnectError("internal error", Code.Internal, undefined, undefined, err);
      copyHeaders(setTrailerStatus(new PlainHeaders(), error), trailers);
    } else {
      trailers["grpc-status"] = grpcStatusOk;
    }
    if (!stream.headersSent) {
      if (frame === undefined && err !== undefined) {
        // Trailers-only: one HEADERS frame with the status, ending the stream.
        stream.respond({ ...responseHeaders(header), ...trailers }, { endStream: true });
        // A client still sending is told to stop (RST_STREAM NO_ERROR, as grpc-go does), so
        // that an unread body holds no stream open.
        if (!stream.readableEnded) stream.close(http2.constants.NGHTTP2_NO_ERROR);
      } else {
        stream.respond(responseHeaders(header), { waitForTrailers: true });
        endWithTrailers(stream, trailers, frame);
      }
    } else {
      endWithTrailers(stream, trailers, frame);
    }
  }
  call.abort(err === undefined || err === call.reason ? undefined : err);
}

function responseHeaders(header: Headers): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = { ":status": 200 };
  copyHeaders(header, out);
  return out;
}

function endWithTrailers(
  stream: http2.ServerHttp2Stream,
  trailers: http2.OutgoingHttpHeaders,
  frame: Uint8Array | undefined,
): void {
  // Emitted once per stream; taken off by hand, which is cheaper than a `once` wrapper.
  const send = () => {
    stream.off("wantTrailers", send);
    stream.sendTrailers(trailers);
  };
  stream.on("wantTrailers", send);
  if (frame === undefined) stream.end();
  else stream.end(frame);
}

/** Resolves when the stream can take more, or has closed. */
function drained(stream: http2.ServerHttp2Stream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}

async function* mapAsync<T, U>(
  source: AsyncIterable<T>,
  f: (value: T) => Promise<U>,
): AsyncIterable<U> {
  for await (const value of source) yield await f(value);
}
