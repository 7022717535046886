import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  constants,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from "node:http2";
import { Code } from "@connectrpc/connect";
import { codeFromString } from "@connectrpc/connect/protocol-connect";
import { codeFromHttpStatus } from "@connectrpc/connect/protocol-grpc";
import type { Protocol, TlsOptions } from "@keel/clients";
import { EnvelopeReader, envelope } from "./envelope-reader.ts";
import type { Call, CallDone } from "./load-generator.ts";
import { codeOfRstCode, statusOfTrailers } from "./wire-status.ts";

/**
 * One HTTP/2 connection of the load generator. It connects on first use and again after the
 * server closed it (GOAWAY, an error); the calls on it report their own failures.
 */
export class WireConnection {
  readonly #url: string;
  readonly #tls: TlsOptions;
  #session: ClientHttp2Session | undefined;

  /** `tls`: the CA and client certificate of an https:// server, when given. */
  constructor(baseUrl: string, tls: TlsOptions = {}) {
    this.#url = baseUrl;
    this.#tls = tls;
  }

  /** The open session, connecting when there is none. */
  session(): ClientHttp2Session {
    const current = this.#session;
    if (current !== undefined && !current.closed && !current.destroyed) return current;
    const session = connect(this.#url, this.#tls);
    const forget = () => {
      if (this.#session === session) this.#session = undefined;
    };
    session.on("error", forget);
    session.on("goaway", forget);
    session.on("close", forget);
    this.#session = session;
    return session;
  }

  close(): void {
    this.#session?.close();
    this.#session = undefined;
  }
}

export interface WireCallOptions {
  connection: WireConnection;
  protocol: Protocol;
  /** The URL's path prefix, if any, then `/package.Service/Method`. */
  path: string;
  /** The serialized request (without any framing), or a function making each call's. */
  request: Uint8Array | (() => Uint8Array);
  /** Server streaming: the response is read to its end and its messages counted. */
  streaming: boolean;
  token: string | undefined;
  timeoutMs: number;
  /** Counts the messages of streaming responses. */
  counters: { messages: number };
}

/** A call on the wire, with what `keel perf` needs to cancel it at its deadline. */
export interface WireCall {
  call: Call;
  /** Cancels the call in flight, with DEADLINE_EXCEEDED, if it started before `startedBefore`. */
  expire(startedBefore: number): void;
}

/**
 * A call over raw HTTP/2 in gRPC, gRPC-Web or Connect, without a client library in the way: the
 * headers and (unless it changes) the body are built once, the response is read without decoding
 * its messages, and the status comes from the trailers (gRPC), the trailers frame (gRPC-Web) or the
 * HTTP status and error body (Connect). It keeps one call in flight: a worker's.
 */
export function createWireCall(options: WireCallOptions): WireCall {
  const { protocol, streaming, counters } = options;
  const frame = protocol !== "connect" || streaming;
  const headers = requestHeaders(options);
  const fixedBody = typeof options.request === "function" ? undefined : body(options.request);
  const reader = frame ? new EnvelopeReader() : undefined;

  let stream: ClientHttp2Stream | undefined;
  let done: CallDone | undefined;
  let startedAt = 0;
  let code = -1;
  let message = "";
  let httpStatus = 0;
  let errorBody: Buffer[] | undefined;

  function body(request: Uint8Array): Buffer {
    return frame ? envelope(0, request) : Buffer.from(request);
  }
  function settle(c: number, m: string) {
    if (code < 0) {
      code = c;
      message = m;
    }
  }
  // The listeners are made once and reused by every call.
  const onResponse = (h: IncomingHttpHeaders) => {
    httpStatus = Number(h[":status"]);
    if (protocol === "connect") {
      if (httpStatus !== 200) errorBody = [];
    } else {
      // A "trailers-only" response: the status comes with the headers.
      const status = statusOfTrailers(h);
      if (status.code >= 0) settle(status.code, status.message);
    }
  };
  const onData = (chunk: Buffer) => {
    if (errorBody !== undefined) errorBody.push(chunk);
    else reader?.push(chunk);
  };
  const onTrailers = (trailers: IncomingHttpHeaders) => {
    const status = statusOfTrailers(trailers);
    if (status.code >= 0) settle(status.code, status.message);
  };
  const onError = (err: Error & { code?: string }) => {
    // A stream reset is read off its code when it closes; anything else is the connection's.
    if (err.code !== "ERR_HTTP2_STREAM_ERROR") settle(Code.Unavailable, err.message);
  };
  const onClose = () => {
    const closed = stream as ClientHttp2Stream;
    stream = undefined;
    finishStatus(closed.rstCode);
    if (streaming && reader !== undefined) counters.messages += reader.messages;
    const finish = done as CallDone;
    done = undefined;
    finish(code, message);
  };
  function finishStatus(rstCode: number | undefined) {
    if (protocol === "grpc-web" && reader?.last !== undefined) {
      const status = statusOfTrailers(reader.last.toString("utf8"));
      if (status.code >= 0) settle(status.code, status.message);
    }
    if (protocol === "connect" && errorBody !== undefined) {
      const error = parseJson(Buffer.concat(errorBody));
      // Not a Connect error (a proxy's page): the code comes from the HTTP status, as specified.
      const named = typeof error?.code === "string" ? codeFromString(error.code) : undefined;
      settle(
        named ?? codeFromHttpStatus(httpStatus),
        String(error?.message ?? `HTTP ${httpStatus}`),
      );
    }
    if (protocol === "connect" && streaming && reader?.last !== undefined) {
      const error = parseJson(reader.last)?.error as Record<string, unknown> | undefined;
      if (error === undefined) settle(0, "");
      else {
        const named = typeof error.code === "string" ? codeFromString(error.code) : undefined;
        settle(named ?? Code.Unknown, String(error.message ?? ""));
      }
    }
    if (rstCode !== undefined && rstCode !== constants.NGHTTP2_NO_ERROR) {
      settle(codeOfRstCode(rstCode), `stream reset with HTTP/2 error code ${rstCode}`);
    }
    if (httpStatus !== 200 && httpStatus !== 0) {
      settle(codeFromHttpStatus(httpStatus), `HTTP status ${httpStatus}`);
    }
    if (protocol === "connect" && !streaming && httpStatus === 200) settle(0, "");
    settle(Code.Unknown, "the response ended without a status");
  }

  const call: Call = (onDone) => {
    done = onDone;
    code = -1;
    message = "";
    httpStatus = 0;
    errorBody = undefined;
    reader?.reset();
    startedAt = performance.now();
    const payload = fixedBody ?? body((options.request as () => Uint8Array)());
    let s: ClientHttp2Stream;
    try {
      s = options.connection.session().request(headers, { endStream: false });
    } catch (err) {
      // A session that is going away: fail this call, asynchronously like any other.
      settle(Code.Unavailable, (err as Error).message);
      done = undefined;
      setImmediate(onDone, code, message);
      return;
    }
    stream = s;
    s.on("response", onResponse);
    s.on("data", onData);
    s.on("trailers", onTrailers);
    s.on("error", onError);
    s.on("close", onClose);
    s.end(payload);
  };
  return {
    call,
    expire(startedBefore) {
      if (stream !== undefined && startedAt < startedBefore && code < 0) {
        settle(Code.DeadlineExceeded, `no answer within ${options.timeoutMs} ms`);
        stream.close(constants.NGHTTP2_CANCEL);
      }
    },
  };
}

function requestHeaders(options: WireCallOptions): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = { ":method": "POST", ":path": options.path };
  switch (options.protocol) {
    case "grpc":
      headers["content-type"] = "application/grpc+proto";
      headers.te = "trailers";
      headers["grpc-timeout"] = `${Math.ceil(options.timeoutMs)}m`;
      break;
    case "grpc-web":
      headers["content-type"] = "application/grpc-web+proto";
      headers["x-grpc-web"] = "1";
      headers["grpc-timeout"] = `${Math.ceil(options.timeoutMs)}m`;
      break;
    case "connect":
      headers["content-type"] = options.streaming
        ? "application/connect+proto"
        : "application/proto";
      headers["connect-protocol-version"] = "1";
      headers["connect-timeout-ms"] = String(Math.ceil(options.timeoutMs));
      break;
  }
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  return headers;
}

function parseJson(bytes: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(bytes.toString("utf8"));
    return typeof value === "object" && value !== null
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
