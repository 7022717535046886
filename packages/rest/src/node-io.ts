import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ReadBody } from "@keel/engine";
import { bounded, quote } from "@keel/interceptors";
import { withHttpStatus } from "./error-mapping.ts";

/** A request of Node's http, https or http2 server (compatibility API). */
export type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;

/**
 * What the REST handler reads of a request: a `NodeRequest`, or a raw HTTP/2 stream's (see
 * `StreamRequest`). Its body is read by the engine (see `bodyOf`).
 */
export interface RestRequest {
  readonly url?: string | undefined;
  readonly method?: string | undefined;
  readonly headers: http2.IncomingHttpHeaders;
  /** The connection's socket: its peer's address, and `encrypted` when it is TLS. */
  readonly socket?: { remoteAddress?: string | undefined; encrypted?: boolean } | undefined;
  /** HTTP/2's `:authority`; HTTP/1.1 has the `host` header instead. */
  readonly authority?: string | undefined;
}

/**
 * A response of Node's http, https or http2 server (compatibility API): the parts used here, which
 * `http.ServerResponse`, `http2.Http2ServerResponse` and connect-node's handlers' have in common.
 */
export interface NodeResponse {
  readonly headersSent: boolean;
  writeHead(status: number, headers: http.OutgoingHttpHeaders): unknown;
  write(chunk: string): boolean;
  end(): unknown;
  end(chunk: string): unknown;
  once(event: "close" | "drain", listener: () => void): unknown;
  off(event: "close" | "drain", listener: () => void): unknown;
}

const jsonType = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * The request body as JSON, read with `read` (the engine's, within its limits: see
 * `InvokeOptions.message`); undefined when empty. Not JSON (by content-type) or compressed → 415,
 * before a byte is read; malformed → 400.
 */
export async function readJsonBody(
  headers: http2.IncomingHttpHeaders,
  read: ReadBody,
): Promise<JsonValue | undefined> {
  const type = headers["content-type"];
  if (type !== undefined && !jsonType.test(type)) {
    const message = `unsupported content-type ${quote(type)}; send JSON (content-type: application/json)`;
    throw withHttpStatus(new ConnectError(message, Code.InvalidArgument), 415);
  }
  const encoding = headers["content-encoding"];
  if (encoding !== undefined && encoding !== "identity") {
    const message = `unsupported content-encoding ${quote(encoding)}; send the body uncompressed`;
    throw withHttpStatus(new ConnectError(message, Code.InvalidArgument), 415);
  }
  const bytes = await read();
  if (bytes.byteLength === 0) return undefined;
  try {
    return JSON.parse(
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"),
    ) as JsonValue;
  } catch (err) {
    const reason = err instanceof Error ? `: ${bounded(err.message, 256)}` : "";
    throw new ConnectError(`the request body is not valid JSON${reason}`, Code.InvalidArgument);
  }
}

/** A request body over the engine's `readMaxBytes`: 413. */
export function bodyTooLarge(readMaxBytes: number): ConnectError {
  const message = `the request body is larger than ${readMaxBytes} bytes`;
  return withHttpStatus(new ConnectError(message, Code.ResourceExhausted), 413);
}

/** Sends a whole JSON response. */
export function writeJson(
  res: NodeResponse,
  status: number,
  headers: http.OutgoingHttpHeaders,
  json: string,
): void {
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(json),
  });
  res.end(json);
}

/** Writes a chunk, waiting while the client does not keep up (or until it goes away). */
export function writeChunk(res: NodeResponse, chunk: string): Promise<void> {
  if (res.write(chunk)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.once("drain", done);
    res.once("close", done);
  });
}

/**
 * The request's origin, `http://host:port`, for the URL interceptors see; worked out once per
 * scheme and authority, remembered in `known` (up to 16 of them).
 */
export function originOf(req: RestRequest, known: Map<string, string>): string {
  const encrypted = req.socket?.encrypted === true;
  const authority = req.authority ?? req.headers.host ?? "localhost";
  const scheme = encrypted ? "https" : "http";
  const key = `${scheme}://${authority}`;
  let origin = known.get(key);
  if (origin === undefined) {
    try {
      origin = new URL(key).origin;
    } catch {
      origin = "http://localhost";
    }
    if (known.size < 16) known.set(key, origin);
  }
  return origin;
}
