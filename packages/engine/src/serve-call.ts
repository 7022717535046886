import { Code, ConnectError } from "@connectrpc/connect";
import { type Compression, compressedFlag } from "@connectrpc/connect/protocol";
import type { Call } from "./call.ts";
import {
  asConnectError,
  createCall,
  passGate,
  type StartedRequest,
  startCall,
} from "./call-lifecycle.ts";
import type { EngineContext } from "./engine-context.ts";
import type { BodyReader, Envelope } from "./envelope-reader.ts";
import type { Exchange } from "./exchange.ts";
import type { AnyRequest, AnyResponse, EngineMethod } from "./method-table.ts";
import { PlainHeaders } from "./plain-headers.ts";
import { RequestBody } from "./request-body.ts";

const noop = () => {};

/** How one protocol writes a call's answer; one per call. */
export interface Answer {
  /** The answer of a call with one response message (serialized, not compressed). */
  unary(response: AnyResponse, data: Uint8Array): void | Promise<void>;
  /** One message of a streamed answer, the headers before the first; resolves when more fit. */
  message(response: AnyResponse, data: Uint8Array): void | Promise<void>;
  /**
   * Ends the call: the status of `err` (OK when undefined) with the response's headers and
   * trailers, or the call's own when the handler never answered.
   */
  end(response: AnyResponse | undefined, err: unknown): void;
}

/** What a protocol has worked out of a request before its call runs. */
export interface CallStart {
  protocolName: string;
  /** Serialization: binary (proto) or JSON. */
  binary: boolean;
  /** The client's timeout; an error when it is malformed. */
  timeout: { timeoutMs?: number; error?: ConnectError };
  /** The negotiated compressions; an error when the client's is not supported. */
  decompress: Compression | null;
  compress: Compression | null;
  compressionError?: ConnectError | undefined;
  /** The HTTP method, as interceptors see it. */
  requestMethod: string;
  responseHeader: PlainHeaders;
  responseTrailer: PlainHeaders;
  /** Splits the body into messages; default gRPC's envelopes. */
  reader?: (() => BodyReader) | undefined;
  /** Envelopes with these flags are skipped, as connect skips them (an end-of-stream marker). */
  skipFlag?: number | undefined;
  /** The request's one message when it is not in the body (a Connect GET). */
  input?: (() => Uint8Array) | undefined;
}

/**
 * Runs one call of `entry` on `exchange`, whatever the protocol: the deadline starts at the
 * headers and covers reading the body; the request gate runs before any body byte is read;
 * messages are read within the limits, decompressed and parsed, handed to the method's
 * interceptor chain; `answer` writes the outcome. The call's signal is aborted at the end.
 */
export function serveCall(
  engine: EngineContext,
  entry: EngineMethod,
  exchange: Exchange,
  start: CallStart,
  answer: (call: Call) => Answer,
  peer: string,
  url: string,
): void {
  const call = createCall(
    engine,
    entry,
    start.protocolName,
    start.timeout.timeoutMs,
    start.responseHeader,
    start.responseTrailer,
  );
  const out = answer(call);
  const early = start.timeout.error ?? start.compressionError ?? engine.admit?.(entry.method);
  if (early !== undefined) {
    engine.onRefusal?.(entry.method, early);
    out.end(undefined, early);
    call.abort(early);
    return;
  }
  const request = startCall(engine, entry, call, {
    headers: exchange.headers,
    peer,
    url,
    requestMethod: start.requestMethod,
    header: PlainHeaders.fromHttp2(exchange.headers),
  });
  exchange.cancelWhenGone(call);
  run(engine, entry, exchange, call, start, out, request).catch(noop);
}

async function run(
  engine: EngineContext,
  entry: EngineMethod,
  exchange: Exchange,
  call: Call,
  start: CallStart,
  out: Answer,
  request: StartedRequest,
): Promise<void> {
  const { method } = entry;
  const serialization = engine.serialization(entry);
  const parse = serialization.getI(start.binary);
  const serialize = serialization.getO(start.binary);
  let response: AnyResponse | undefined;
  // Whether the interceptors have the call: until then, a failure is a refusal they never see.
  let chained = true;
  try {
    const gated = passGate(engine, entry, call, request);
    if (gated !== undefined) await gated;
    chained = false;
    if (method.methodKind === "unary") {
      let envelopes: Envelope[];
      if (start.input !== undefined) {
        envelopes = [
          { flags: start.decompress === null ? 0 : compressedFlag, data: start.input() },
        ];
      } else {
        envelopes = withoutSkipped(
          await readBody(engine, exchange, call, start).all(),
          start.skipFlag,
        );
      }
      if (envelopes.length === 0) {
        throw new ConnectError(
          "protocol error: missing input message for unary method",
          Code.Unimplemented,
        );
      }
      if (envelopes.length > 1) {
        throw new ConnectError(
          "protocol error: received extra input message for unary method",
          Code.Unimplemented,
        );
      }
      const message = decodeEnvelope(envelopes[0] as Envelope, start, parse, engine.readMaxBytes);
      request.message = message instanceof Promise ? await message : message;
    } else {
      // What reads, decompresses and parses a stream's messages.
      const decode = (envelope: Envelope) =>
        decodeEnvelope(envelope, start, parse, engine.readMaxBytes);
      const body = () => readBody(engine, exchange, call, start);
      // Read when the chain asks for it, as connect does: the interceptors see a call whose
      // message is bad, and the method's own check counts the messages.
      request.message =
        method.methodKind === "server_streaming"
          ? decodeAll(body, decode, start.skipFlag)
          : mapAsync(body(), decode, start.skipFlag);
    }
    chained = true;
    response = await entry.invoke(request as AnyRequest);
    if (!response.stream) {
      const sent = out.unary(response, serialize.serialize(response.message as never));
      if (sent !== undefined) await sent;
      call.abort();
      return;
    }
    await pump(exchange, call, response, serialize, out);
  } catch (err) {
    if (!chained) engine.onRefusal?.(entry.method, asConnectError(err));
    out.end(response, err);
    call.abort(err === call.reason ? undefined : err);
  }
}

/**
 * Writes a streamed answer's messages as they come, waiting when the client reads slower than the
 * handler writes.
 */
async function pump(
  exchange: Exchange,
  call: Call,
  response: AnyResponse & { stream: true },
  serialize: { serialize(message: unknown): Uint8Array },
  out: Answer,
): Promise<void> {
  const it = response.message[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      const step = await it.next();
      if (step.done === true) break;
      if (exchange.gone) return;
      const sent = out.message(response, serialize.serialize(step.value));
      if (sent !== undefined) await sent;
    }
    finished = true;
    out.end(response, undefined);
    call.abort();
  } catch (err) {
    finished = true;
    out.end(response, err);
    call.abort(err === call.reason ? undefined : err);
  } finally {
    // Stopped early (the client went away): let the handler's generator clean up.
    if (!finished) it.return?.()?.catch(noop);
  }
}

/** The request body of a call, read within the engine's limits. */
function readBody(
  engine: EngineContext,
  exchange: Exchange,
  call: Call,
  start: CallStart,
): RequestBody {
  return new RequestBody(
    exchange.body,
    call,
    engine.bodyOptions(exchange.connection),
    start.reader?.(),
  );
}

/**
 * An envelope's message: decompressed (a promise only then: no microtask for a plain one) within
 * `readMaxBytes`, and parsed.
 */
function decodeEnvelope(
  envelope: Envelope,
  start: CallStart,
  parse: { parse(data: Uint8Array): unknown },
  readMaxBytes: number,
): unknown {
  if ((envelope.flags & compressedFlag) !== compressedFlag) return parse.parse(envelope.data);
  if (start.decompress === null) {
    throw new ConnectError(
      "received compressed envelope, but do not know how to decompress",
      Code.Internal,
    );
  }
  return start.decompress.decompress(envelope.data, readMaxBytes).then((data) => parse.parse(data));
}

/** One enveloped message; a promise only when it is compressed (no microtask per plain one). */
export function envelope(
  data: Uint8Array,
  compress: Compression | null,
  compressMinBytes: number,
  flags = 0,
): Uint8Array | Promise<Uint8Array> {
  if (compress !== null && data.byteLength >= compressMinBytes) {
    return compress.compress(data).then((zipped) => encodeEnvelope(flags | compressedFlag, zipped));
  }
  return encodeEnvelope(flags, data);
}

/**
 * A message with its 5-byte prefix (flags, big-endian length), as connect's `encodeEnvelope`
 * writes it, in bytes from Node's pool: connect's makes each answer an `ArrayBuffer` of its own,
 * about a microsecond per call (a third of the engine's own time on a small unary answer).
 */
function encodeEnvelope(flags: number, data: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(data.byteLength + 5);
  out[0] = flags;
  out.writeUInt32BE(data.byteLength, 1);
  out.set(data, 5);
  return out;
}

function withoutSkipped(envelopes: Envelope[], skipFlag: number | undefined): Envelope[] {
  return skipFlag === undefined
    ? envelopes
    : envelopes.filter((e) => (e.flags & skipFlag) !== skipFlag);
}

/** A body that must end before its messages are decoded (one, to a server-streaming method). */
async function* decodeAll<U>(
  readBody: () => RequestBody,
  f: (value: Envelope) => U | Promise<U>,
  skipFlag: number | undefined,
): AsyncIterable<U> {
  for (const envelope of withoutSkipped(await readBody().all(), skipFlag)) yield await f(envelope);
}

async function* mapAsync<U>(
  source: AsyncIterable<Envelope>,
  f: (value: Envelope) => U | Promise<U>,
  skipFlag: number | undefined,
): AsyncIterable<U> {
  for await (const value of source) {
    if (skipFlag !== undefined && (value.flags & skipFlag) === skipFlag) continue;
    yield await f(value);
  }
}
