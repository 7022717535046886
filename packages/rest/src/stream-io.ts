import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { TLSSocket } from "node:tls";
import { rawFields, StreamExchange } from "@keel/engine";
import type { NodeResponse, RestRequest } from "./node-io.ts";

/**
 * A raw HTTP/2 stream as the request the REST handler reads: what Node's compatibility layer
 * would make of it (a request and a response object, their listeners and state per call), only
 * the parts the handler reads.
 */
export class StreamRequest implements RestRequest {
  readonly url: string;
  readonly method: string;
  readonly headers: http2.IncomingHttpHeaders;
  readonly authority: string | undefined;
  /** The stream, whose data is the request body. */
  readonly stream: http2.ServerHttp2Stream;

  constructor(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) {
    this.stream = stream;
    this.headers = headers;
    this.url = headers[":path"] ?? "/";
    this.method = headers[":method"] ?? "GET";
    this.authority = headers[":authority"] ?? headers.host;
  }

  /** The connection's socket (its address, and whether it is TLS). */
  get socket(): { remoteAddress?: string | undefined; encrypted?: boolean } {
    const socket = this.stream.session?.socket as Partial<TLSSocket> | undefined;
    return { remoteAddress: socket?.remoteAddress, encrypted: socket?.encrypted === true };
  }
}

/**
 * The answer on a raw HTTP/2 stream, written through the engine's exchange: the `date` header
 * added, fields HTTP/2 forbids left out (a handler's `connection`), and nothing written once the
 * client has gone.
 */
export class StreamResponse implements NodeResponse {
  private readonly stream: http2.ServerHttp2Stream;
  private readonly exchange: StreamExchange;
  /** A HEAD request's answer is its headers only, as Node's compatibility layer sends it. */
  private readonly headersOnly: boolean;
  private ended = false;

  constructor(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) {
    this.stream = stream;
    this.exchange = new StreamExchange(stream, headers);
    this.headersOnly = headers[":method"] === "HEAD";
  }

  get headersSent(): boolean {
    return this.exchange.headersSent;
  }

  writeHead(status: number, headers: http.OutgoingHttpHeaders): void {
    if (this.exchange.gone || this.exchange.headersSent) return;
    this.ended = this.headersOnly;
    this.exchange.respond(status, rawFields(headers), this.headersOnly);
  }

  write(chunk: string): boolean {
    if (this.ended || this.exchange.gone) return true;
    return this.exchange.write(Buffer.from(chunk));
  }

  end(chunk?: string): void {
    if (this.ended || this.exchange.gone) return;
    this.ended = true;
    this.exchange.end(chunk === undefined ? undefined : Buffer.from(chunk));
    // A body left unread (one over the size limit, say): once the answer is out, the client is
    // told to stop sending it (RST_STREAM NO_ERROR, as the engine does), not left blocked.
    if (!this.stream.endAfterHeaders) this.exchange.stopBody();
  }

  once(event: "close" | "drain", listener: () => void): void {
    this.stream.once(event, listener);
  }

  off(event: "close" | "drain", listener: () => void): void {
    this.stream.off(event, listener);
  }
}
