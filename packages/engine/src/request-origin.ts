import type * as http2 from "node:http2";

// A connection's peer address, read once (an HTTP/2 session's socket is a proxy object), and the
// origin of its requests, worked out once per distinct authority.
const peerAddress = Symbol("keel.peerAddress");
const origins = Symbol("keel.origins");

/** An HTTP/2 session or a socket: what a request arrived on. */
export type Connection = object & {
  socket?: { remoteAddress?: string | undefined; encrypted?: boolean } | null | undefined;
  remoteAddress?: string | undefined;
  encrypted?: boolean;
  [peerAddress]?: string;
  [origins]?: Map<string, string>;
};

/** The socket under `connection` (itself when it is a socket). */
function socketOf(connection: Connection) {
  return connection.socket ?? connection;
}

/** The request's URL as connect-node gives it: scheme, authority and path, normalized by URL. */
export function urlOf(
  connection: Connection | undefined,
  headers: http2.IncomingHttpHeaders,
  path: string,
): string {
  const authority = headers[":authority"] ?? headers.host ?? "";
  if (connection === undefined) return path;
  let known = connection[origins];
  if (known === undefined) {
    known = new Map();
    connection[origins] = known;
  }
  let origin = known.get(authority);
  if (origin === undefined) {
    const scheme = socketOf(connection).encrypted ? "https" : "http";
    try {
      origin = new URL(`${scheme}://${authority}`).origin;
    } catch {
      origin = `${scheme}://${authority}`;
    }
    if (known.size < 16) known.set(authority, origin);
  }
  return origin + path;
}

/** The peer's address, as the socket gives it ("" when it has none). */
export function peerOf(connection: Connection | undefined): string {
  if (connection === undefined) return "";
  let address = connection[peerAddress];
  if (address === undefined) {
    address = socketOf(connection).remoteAddress ?? "";
    connection[peerAddress] = address;
  }
  return address;
}
