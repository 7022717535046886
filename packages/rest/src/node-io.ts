import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { bounded, quote } from "@keel/interceptors";
import { withHttpStatus } from "./error-mapping.ts";

/** A request of Node's http, https or http2 server (compatibility API). */
export type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;

/**
 * What the REST handler reads of a request: a `NodeRequest`, or a raw HTTP/2 stream's (see
 * `StreamRequest`).
 */
export interface RestRequest extends AsyncIterable<Buffer> {
  readonly url?: string | undefined;
  readonly method?: string | undefined;
  readonly headers: http2.IncomingHttpHeaders;
  /** The connection's socket: its peer's address, and `encrypted` when it is TLS. */
  readonly socket?: { remoteAddress?: string | undefined; encrypted?: boolean } | undefined;
  /** HTTP/2's `:authority`; HTTP/1.1 has the `host` header instead. */
  readonly authority?: string | undefined;
  /** Node's stream iteration, when the request is a Node stream (see `readJsonBody`). */
  iterator?(options: { destroyOnReturn: boolean }): AsyncIterable<Buffer>;
  /** Reads on without anyone reading: what is left of the body is dropped. */
  resume?(): unknown;
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
 * Reads the request body as JSON; undefined when empty. Not JSON (by content-type) or compressed
 * → 415; larger than `readMaxBytes` → 413; malformed → 400.
 */
export async function readJsonBody(
  req: RestRequest,
  readMaxBytes: number,
): Promise<JsonValue | undefined> {
  const type = req.headers["content-type"];
  if (type !== undefined && !jsonType.test(type)) {
    const message = `unsupported content-type ${quote(type)}; send JSON (content-type: application/json)`;
    throw withHttpStatus(new ConnectError(message, Code.InvalidArgument), 415);
  }
  const encoding = req.headers["content-encoding"];
  if (encoding !== undefined && encoding !== "identity") {
    const message = `unsupported content-encoding ${quote(encoding)}; send the body uncompressed`;
    throw withHttpStatus(new ConnectError(message, Code.InvalidArgument), 415);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  // Stopping early leaves the request as it is (Node's iteration would destroy it, and with it
  // the answer and, on HTTP/1.1, the connection a client goes on to use).
  const body = req.iterator?.({ destroyOnReturn: false }) ?? req;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > readMaxBytes) {
      // What is left is read and dropped, never held: the answer reaches the client and an
      // HTTP/1.1 connection stays usable (a raw HTTP/2 stream is also reset once it is answered).
      req.resume?.();
      const message = `the request body is larger than ${readMaxBytes} bytes`;
      throw withHttpStatus(new ConnectError(message, Code.ResourceExhausted), 413);
    }
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as JsonValue;
  } catch (err) {
    const reason = err instanceof Error ? `: ${bounded(err.message, 256)}` : "";
    throw new ConnectError(`the request body is not valid JSON${reason}`, Code.InvalidArgument);
  }
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
