import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";

/**
 * A request handler for HTTP/1.1 and HTTP/2 (the server's one port speaks both) that says whether
 * it answered the request. When it returns false the server goes on to its next handler.
 */
export type HttpHandler = (
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
) => boolean;

/** What the handlers use of a response, common to both protocols. */
export interface HandlerResponse {
  statusCode: number;
  setHeader(name: string, value: string | number): unknown;
  getHeader(name: string): number | string | string[] | undefined;
  end(body?: string | Uint8Array): unknown;
}

/** The response as the part both protocols share; their `end` overloads do not unite otherwise. */
export function asResponse(res: ServerResponse | Http2ServerResponse): HandlerResponse {
  return res as HandlerResponse;
}

/** The request's path, without its query. */
export function pathOf(req: IncomingMessage | Http2ServerRequest): string {
  const url = req.url ?? "/";
  const query = url.indexOf("?");
  return query === -1 ? url : url.slice(0, query);
}
