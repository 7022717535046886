import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerResponse } from "@connectrpc/connect/protocol";
import { connectErrorFromJson } from "./error-mapping.ts";

/** A call of a Connect handler on behalf of an HTTP/JSON request. */
export interface ConnectCall {
  handler: UniversalHandler;
  /** The request message in proto3 JSON. */
  message: JsonObject;
  /** Headers for the interceptors and the handler (authorization, traceparent, deadline, …). */
  header: Headers;
  /** The origin of the HTTP request, `http://host:port`. */
  origin: string;
  httpVersion: string;
  /** Aborted when the HTTP client goes away. */
  signal: AbortSignal;
  contextValues: ContextValues | undefined;
}

/** The outcome of a unary call: the response message or the error, with the response headers. */
export type UnaryOutcome =
  | { ok: true; header: Headers; message: JsonValue }
  | { ok: false; header: Headers; error: ConnectError };

/** One event of a server stream: a response message, or its end (with its error when it failed). */
export type StreamEvent =
  | { kind: "message"; message: JsonValue }
  | { kind: "end"; error: ConnectError | undefined; metadata: Headers };

/**
 * Makes a unary call with the Connect protocol in JSON (`POST <requestPath>`, `application/json`),
 * handing the handler the message as already parsed JSON.
 */
export async function callUnary(call: ConnectCall): Promise<UnaryOutcome> {
  const response = await call.handler(request(call, "application/json", call.message));
  const header = response.header ?? new Headers();
  const text = new TextDecoder().decode(await readAll(response.body));
  let json: JsonValue | undefined;
  try {
    json = JSON.parse(text) as JsonValue;
  } catch {
    json = undefined;
  }
  if (response.status === 200 && json !== undefined) return { ok: true, header, message: json };
  return { ok: false, header, error: connectErrorFromJson(json) ?? unexpected(response) };
}

/**
 * Makes a server-streaming call with the Connect protocol in JSON (`application/connect+json`,
 * the request in one envelope). Resolves with the response headers and the stream's events, which
 * always end with one `end` event. Returning from `events` early cancels the call.
 */
export async function callServerStream(
  call: ConnectCall,
): Promise<{ header: Headers; events: AsyncGenerator<StreamEvent, void> }> {
  const data = new TextEncoder().encode(JSON.stringify(call.message));
  const envelope = new Uint8Array(5 + data.byteLength);
  new DataView(envelope.buffer).setUint32(1, data.byteLength);
  envelope.set(data, 5);
  const body = (async function* () {
    yield envelope;
  })();
  const response = await call.handler(request(call, "application/connect+json", body));
  return { header: response.header ?? new Headers(), events: streamEvents(response) };
}

function request(
  call: ConnectCall,
  contentType: string,
  body: JsonObject | AsyncIterable<Uint8Array>,
): Parameters<UniversalHandler>[0] {
  const header = new Headers(call.header);
  header.set("content-type", contentType);
  header.set("connect-protocol-version", "1");
  return {
    httpVersion: call.httpVersion,
    method: "POST",
    url: new URL(call.handler.requestPath, call.origin).toString(),
    header,
    body,
    signal: call.signal,
    ...(call.contextValues === undefined ? {} : { contextValues: call.contextValues }),
  };
}

/** Splits a Connect stream into its envelopes: messages, then the end-of-stream message. */
async function* streamEvents(response: UniversalServerResponse): AsyncGenerator<StreamEvent, void> {
  if (response.status !== 200 || response.body === undefined) {
    yield { kind: "end", error: unexpected(response), metadata: new Headers() };
    return;
  }
  let buffer: Uint8Array = new Uint8Array(0);
  try {
    for await (const chunk of response.body) {
      buffer = concat(buffer, chunk);
      while (buffer.byteLength >= 5) {
        const flags = buffer[0] ?? 0;
        const length = new DataView(buffer.buffer, buffer.byteOffset).getUint32(1);
        if (buffer.byteLength < 5 + length) break;
        const json = JSON.parse(new TextDecoder().decode(buffer.subarray(5, 5 + length)));
        buffer = buffer.subarray(5 + length);
        if ((flags & 0b01) !== 0) throw new Error("a compressed message, which was not asked for");
        if ((flags & 0b10) !== 0) {
          yield endOfStream(json);
          return;
        }
        yield { kind: "message", message: json };
      }
    }
  } catch (err) {
    yield { kind: "end", error: ConnectError.from(err, Code.Internal), metadata: new Headers() };
    return;
  }
  const error = new ConnectError(
    "the stream ended without an end-of-stream message",
    Code.Internal,
  );
  yield { kind: "end", error, metadata: new Headers() };
}

/** Reads Connect's end-of-stream message: `{"error": {…}, "metadata": {"name": ["value"]}}`. */
function endOfStream(json: JsonValue): StreamEvent {
  const metadata = new Headers();
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return { kind: "end", error: undefined, metadata };
  }
  const meta = json.metadata;
  if (typeof meta === "object" && meta !== null && !Array.isArray(meta)) {
    for (const [name, values] of Object.entries(meta)) {
      for (const value of Array.isArray(values) ? values : [values]) {
        if (typeof value === "string") metadata.append(name, value);
      }
    }
  }
  const error =
    json.error === undefined
      ? undefined
      : (connectErrorFromJson(json.error) ??
        new ConnectError("malformed end of stream", Code.Internal));
  return { kind: "end", error, metadata };
}

/** A response that is not Connect's: the handler turned down the request itself (415, 405, …). */
function unexpected(response: UniversalServerResponse): ConnectError {
  return new ConnectError(`the Connect handler answered HTTP ${response.status}`, Code.Internal);
}

async function readAll(body: AsyncIterable<Uint8Array> | undefined): Promise<Uint8Array> {
  let all: Uint8Array = new Uint8Array(0);
  if (body === undefined) return all;
  for await (const chunk of body) all = concat(all, chunk);
  return all;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.byteLength === 0) return b;
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}
