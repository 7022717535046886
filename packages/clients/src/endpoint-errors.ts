import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Node.js error codes of a connection that failed or broke. connect-node reports a connection
 * reset as ABORTED (what a server sees when its client hangs up); to a client it means the
 * endpoint went away, which gRPC calls UNAVAILABLE.
 */
const connectionCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EADDRNOTAVAIL",
  "ERR_HTTP2_GOAWAY_SESSION",
  "ERR_HTTP2_INVALID_SESSION",
  "ERR_HTTP2_SESSION_ERROR",
  "ERR_HTTP2_STREAM_CANCEL",
  "ERR_HTTP2_PING_CANCEL",
]);

/** Codes that prove the request never reached a server: no connection, or a refused stream. */
const unsentCodes = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EADDRNOTAVAIL",
  "ERR_HTTP2_GOAWAY_SESSION",
]);

/**
 * connect-node's own messages for connections that died without a Node.js error code. A stream
 * the caller did not cancel but that closed with CANCEL went down with its connection: Node.js
 * resets the open streams of a destroyed session with CANCEL, and connect-node reports that as
 * CANCELED.
 */
const connectionMessages =
  /^(PING timed out|received GOAWAY without any open streams|http\/2 stream closed with error code CANCEL \(0x8\))/;

const refusedStream = /^http\/2 stream closed with error code REFUSED_STREAM/;

const unsent = new WeakSet<ConnectError>();

/** The Node.js error codes along an error's `cause` chain. */
function nodeCodes(err: unknown): string[] {
  const codes: string[] = [];
  const seen = new Set<unknown>();
  for (let e = err; e instanceof Error && !seen.has(e); e = e.cause) {
    seen.add(e);
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
  }
  return codes;
}

/** What a failed call to one endpoint says about that endpoint. */
export interface EndpointFailure {
  /** The error to pass on: a broken connection becomes UNAVAILABLE naming the endpoint. */
  error: ConnectError;
  /** The connection failed or broke, so the endpoint should leave the rotation until it is back. */
  connection: boolean;
}

/**
 * Classifies an error of a call to `url` that its caller did not cancel (a cancelled call's
 * error says nothing about the endpoint). A connection failure becomes an UNAVAILABLE error
 * that names the endpoint and keeps the original as its cause; it counts as never sent when the
 * request cannot have reached the server (a refused connection, a stream opened after GOAWAY).
 */
export function classifyEndpointError(err: unknown, url: string): EndpointFailure {
  const codes = nodeCodes(err);
  const e = ConnectError.from(err);
  const connection =
    codes.some((c) => connectionCodes.has(c)) || connectionMessages.test(e.rawMessage);
  if (!connection) {
    // HTTP/2 promises that a stream reset with REFUSED_STREAM was not processed at all.
    if (refusedStream.test(e.rawMessage)) unsent.add(e);
    return { error: e, connection: false };
  }
  const error = new ConnectError(
    `${url}: ${e.rawMessage}`,
    Code.Unavailable,
    e.metadata,
    undefined,
    err,
  );
  if (codes.some((c) => unsentCodes.has(c)) || unsent.has(e)) unsent.add(error);
  return { error, connection: true };
}

/**
 * An UNAVAILABLE error for a call that was never sent (no endpoint to send it to), which is safe
 * to retry whatever the call does.
 */
export function unsentError(message: string, cause?: unknown): ConnectError {
  const error = new ConnectError(message, Code.Unavailable, undefined, undefined, cause);
  unsent.add(error);
  return error;
}

/** Whether the call that failed with this error certainly never reached a server. */
export function wasNeverSent(err: unknown): boolean {
  return err instanceof ConnectError && unsent.has(err);
}
