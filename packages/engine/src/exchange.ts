import * as diagnosticsChannel from "node:diagnostics_channel";
import type * as http from "node:http";
import * as http2 from "node:http2";
import type { Readable } from "node:stream";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Call } from "./call.ts";

/**
 * Response header fields in Node's raw form: name, value, name, value, ... (lower-case names; a
 * name may repeat, as `set-cookie` does). Handed to a raw HTTP/2 stream as they are: Node keeps
 * the headers a stream was answered with until the stream is gone (after its trailers), and an
 * array of a few strings is a fraction of the null-prototype object it makes from a header object.
 */
export type RawHeaders = string[];

/** The raw fields of a header object; each value of a list a field of its own. */
export function rawFields(headers: http2.OutgoingHttpHeaders): RawHeaders {
  const out: RawHeaders = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) out.push(name, item);
    else out.push(name, String(value));
  }
  return out;
}

/**
 * One HTTP request and its answer, whichever way it arrived: a raw HTTP/2 stream, or a
 * `node:http` request (HTTP/1.1, or HTTP/2 through Node's compatibility layer). The protocols
 * write through it, so that each is written once for every transport.
 */
export interface Exchange {
  /** "2" for HTTP/2, "1.1" (or "1.0") otherwise, as connect-node's `httpVersion`. */
  readonly httpVersion: string;
  /** The request headers, lower-case names; pseudo-headers only on a raw HTTP/2 stream. */
  readonly headers: http2.IncomingHttpHeaders;
  /** The request body. */
  readonly body: Readable;
  /** What request bytes are budgeted per: the HTTP/2 session or the socket. */
  readonly connection: object | undefined;
  /** Whether the status and headers have gone out. */
  readonly headersSent: boolean;
  /** Whether nothing more can be written: the answer ended or the client went away. */
  readonly gone: boolean;
  /**
   * Sends the status and headers; with `end`, the answer is only them; with `trailers`, HTTP
   * trailers will follow the body (given to `end`).
   */
  respond(status: number, headers: RawHeaders, end: boolean, trailers?: boolean): void;
  /** Writes body bytes; false when the client reads slower than this writes (see `drained`). */
  write(chunk: Uint8Array): boolean;
  /** Resolves when more may be written, or the client has gone. */
  drained(): Promise<void>;
  /** Ends the answer: `chunk` last, then `trailers` (sent as HTTP trailers). */
  end(chunk?: Uint8Array, trailers?: http2.OutgoingHttpHeaders): void;
  /** Cancels `call` (CANCELED) should the client go away before it ends. */
  cancelWhenGone(call: Call): void;
  /** The answer is complete: a client still sending is told to stop, nothing more is read. */
  stopBody(): void;
}

const noop = () => {};

// Node only reads a stream's respond options.
const endStream = Object.freeze({ endStream: true });
const waitForTrailers = Object.freeze({ waitForTrailers: true });
const noOptions = Object.freeze({});

let dateSecond = -1;
let dateText = "";

/**
 * The HTTP date now (RFC 9110), made once a second: sent with every answer on a stream as Node
 * would add it (it adds none to raw headers that have one, and none grows the array).
 */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/** A raw `node:http2` stream. */
export class StreamExchange implements Exchange {
  readonly httpVersion = "2";
  readonly headers: http2.IncomingHttpHeaders;
  readonly body: Readable;
  private readonly stream: http2.ServerHttp2Stream;

  constructor(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) {
    this.stream = stream;
    this.body = stream;
    this.headers = headers;
    // Without a listener, a stream error (a reset with an error code) would be thrown. One is
    // enough, however many exchanges a stream is looked at through (the engine's, then REST's).
    if (stream.listenerCount("error") === 0) stream.on("error", noop);
  }

  get connection(): object | undefined {
    return this.stream.session;
  }

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  get gone(): boolean {
    return this.stream.destroyed || this.stream.closed;
  }

  respond(status: number, headers: RawHeaders, end: boolean, trailers = false): void {
    // Copied into an array of its exact length: Node keeps it as long as the stream, and one
    // grown by pushes holds room for 16 and more.
    const n = headers.length;
    let dated = false;
    for (let i = 0; i < n; i += 2) if (headers[i] === "date") dated = true;
    const raw: RawHeaders = new Array(dated ? n + 2 : n + 4);
    for (let i = 0; i < n; i++) raw[i] = headers[i] as string;
    raw[n] = ":status";
    raw[n + 1] = String(status);
    // A date the handler set is the one sent.
    if (!dated) {
      raw[n + 2] = "date";
      raw[n + 3] = httpDate();
    }
    const options = end ? endStream : trailers ? waitForTrailers : noOptions;
    try {
      this.stream.respond(raw, options);
    } catch {
      // Node refuses what HTTP/2 forbids: fields such as `connection` a handler set (HTTP/1.1's,
      // which Node's compatibility layer drops too) are left out; anything else resets the
      // stream (INTERNAL_ERROR) rather than leave the call unanswered.
      try {
        this.stream.respond(withoutConnectionFields(raw), options);
      } catch {
        this.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      }
    }
  }

  write(chunk: Uint8Array): boolean {
    return this.stream.write(chunk);
  }

  drained(): Promise<void> {
    return drained(this.stream);
  }

  end(chunk?: Uint8Array, trailers?: http2.OutgoingHttpHeaders): void {
    const stream = this.stream;
    // Reset already (headers HTTP/2 refuses, see `respond`): nothing more goes out.
    if (stream.closed) return;
    if (trailers !== undefined) {
      // Node asks for them once, when the body has gone out (after this turn of the event loop).
      (stream as TrailersHolder)[trailersKey] = trailers;
      stream.on("wantTrailers", sendHeldTrailers);
    }
    if (chunk === undefined) stream.end();
    else stream.end(chunk);
  }

  cancelWhenGone(call: Call): void {
    // Held on the stream while the call runs, for Node's stream-close channel (see
    // `onStreamClosed`), and let go when it ends: a `close` listener would be a closure, an entry
    // in the stream's listeners and another closure to take it off, per call.
    (this.stream as CallHolder)[runningCall] = call;
    call.onAbort(this);
  }

  /** The call ended: the stream, which lives on until the client has the trailers, lets it go. */
  callEnded(): void {
    (this.stream as CallHolder)[runningCall] = undefined;
  }

  stopBody(): void {
    // RST_STREAM NO_ERROR, as grpc-go does, so that an unread body holds no stream open.
    if (!this.stream.readableEnded) this.stream.close(http2.constants.NGHTTP2_NO_ERROR);
  }
}

type AnyRequest = http.IncomingMessage | http2.Http2ServerRequest;
type AnyResponse = http.ServerResponse | http2.Http2ServerResponse;

/**
 * What a request's buffered bytes are counted per (see `EngineContext.bodyOptions`): the HTTP/2
 * session of a raw stream or of a compatibility-layer request (whose socket is one per stream),
 * else the HTTP/1.1 socket.
 */
export function connectionOf(source: http2.ServerHttp2Stream | AnyRequest): object | undefined {
  if ("session" in source) return source.session ?? undefined;
  return "stream" in source ? (source.stream.session ?? undefined) : (source.socket ?? undefined);
}

const trailersKey = Symbol("keel trailers");

/** The call a raw stream is serving, until the call ends (see `cancelWhenGone`). */
const runningCall = Symbol("keel call");

type CallHolder = http2.ServerHttp2Stream & { [runningCall]?: Call | undefined };

/** What a call whose client went away ends with. */
const cancelled = () => new ConnectError("the client cancelled the call", Code.Canceled);

/**
 * A server stream closed: the call it still serves is cancelled. Node publishes this as it closes
 * the stream (a reset, the connection gone, or the engine's own reset), before its `close` event:
 * the cancellation waits for the next tick, as the event would, so that a call the engine is
 * ending there and then ends as it meant to.
 */
function onStreamClosed(message: unknown): void {
  const stream = (message as { stream: CallHolder }).stream;
  const call = stream[runningCall];
  if (call === undefined) return;
  stream[runningCall] = undefined;
  process.nextTick(cancelIfRunning, call);
}

function cancelIfRunning(call: Call): void {
  if (!call.isAborted) call.abort(cancelled());
}

// Node's diagnostics channel for a server stream that closes (Node 24), one subscriber for the
// process; a stream that serves no call costs a property read.
diagnosticsChannel.subscribe("http2.server.stream.close", onStreamClosed);

type TrailersHolder = http2.ServerHttp2Stream & { [trailersKey]?: http2.OutgoingHttpHeaders };

/**
 * Sends the trailers held on the stream when Node asks for them (one function for every stream, left
 * on it: Node asks once). A closure per call would live, with its context, until Node asks, which
 * is after the turn of the event loop that answered: long enough to be copied to the old
 * generation with every call.
 */
function sendHeldTrailers(this: TrailersHolder): void {
  const trailers = this[trailersKey];
  this[trailersKey] = undefined;
  if (trailers === undefined) return;
  try {
    this.sendTrailers(trailers);
  } catch {
    // As for the headers (see `respond`).
    try {
      this.sendTrailers(
        Object.fromEntries(
          Object.entries(trailers).filter(([name, value]) => allowedField(name, value)),
        ),
      );
    } catch {
      this.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    }
  }
}

/**
 * Whether HTTP/2 allows a field (RFC 9113, 8.2.2): none of HTTP/1.1's connection-specific ones,
 * and `te` only as "trailers".
 */
function allowedField(name: string, value: unknown): boolean {
  switch (name) {
    case "connection":
    case "keep-alive":
    case "proxy-connection":
    case "transfer-encoding":
    case "upgrade":
    case "http2-settings":
      return false;
    case "te":
      return value === "trailers";
    default:
      return true;
  }
}

function withoutConnectionFields(raw: RawHeaders): RawHeaders {
  const out: RawHeaders = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    if (allowedField(name, value)) out.push(name, value);
  }
  return out;
}

/** A `node:http` request: HTTP/1.1, or HTTP/2 through Node's compatibility layer. */
export class RequestExchange implements Exchange {
  readonly httpVersion: string;
  readonly headers: http2.IncomingHttpHeaders;
  readonly body: Readable;
  readonly connection: object | undefined;
  private readonly res: AnyResponse;
  private ended = false;

  constructor(req: AnyRequest, res: AnyResponse) {
    this.httpVersion = req.httpVersion;
    this.headers = req.headers;
    this.body = req as Readable;
    this.res = res;
    this.connection = connectionOf(req);
    res.on("error", noop);
  }

  get headersSent(): boolean {
    return this.res.headersSent;
  }

  get gone(): boolean {
    return this.ended || this.res.destroyed || this.res.writableEnded;
  }

  respond(status: number, headers: RawHeaders, end: boolean): void {
    const res = this.res as http.ServerResponse;
    // Headers set before (CORS, a request id) stay unless named here; a name repeated here (a
    // cookie) keeps every value.
    const fields: Record<string, string | string[]> = Object.create(null);
    for (let i = 0; i + 1 < headers.length; i += 2) {
      const name = headers[i] as string;
      const value = headers[i + 1] as string;
      const previous = fields[name];
      fields[name] =
        previous === undefined
          ? value
          : Array.isArray(previous)
            ? [...previous, value]
            : [previous, value];
    }
    for (const name in fields) res.setHeader(name, fields[name] as string | string[]);
    res.writeHead(status);
    if (end) this.end();
    else if (this.httpVersion !== "2") res.flushHeaders();
  }

  write(chunk: Uint8Array): boolean {
    return (this.res as http.ServerResponse).write(chunk);
  }

  drained(): Promise<void> {
    return drained(this.res);
  }

  end(chunk?: Uint8Array, trailers?: http2.OutgoingHttpHeaders): void {
    this.ended = true;
    const res = this.res as http.ServerResponse;
    if (trailers !== undefined) res.addTrailers(trailers as http.OutgoingHttpHeaders);
    if (chunk === undefined) res.end();
    else res.end(chunk);
  }

  cancelWhenGone(call: Call): void {
    const res = this.res;
    const onGone = () => call.abort(cancelled());
    res.on("close", onGone);
    call.onAbort(() => res.off("close", onGone));
  }

  stopBody(): void {
    // HTTP/1.1 cannot refuse the rest of a body and keep the connection: it is read and dropped
    // (the request body's reader does), within the body's limits.
  }
}

/** Resolves when `writable` can take more, or has closed. */
function drained(writable: NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      writable.off("drain", done);
      writable.off("close", done);
      resolve();
    };
    writable.on("drain", done);
    writable.on("close", done);
  });
}
