import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { PlainHeaders } from "@keel/engine";

// Request headers that concern the HTTP exchange or the REST encoding, not the call. Everything
// else (authorization, x-request-id, traceparent, tracestate, baggage, user-agent, …) is handed
// on to the interceptors and the handler.
const hopByHop = new Set([
  "host",
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "upgrade",
  "http2-settings",
  "expect",
  "content-type",
  "content-length",
  "content-encoding",
  "accept",
  "accept-encoding",
  "grpc-timeout",
  "x-server-timeout",
]);

const grpcTimeoutUnits: Record<string, number> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};

/**
 * The request headers interceptors and the handler see of an HTTP request: the caller's headers
 * but the hop-by-hop, content and protocol ones. A deadline is taken from `connect-timeout-ms`,
 * `grpc-timeout` (`5S`, `250m`) or `x-server-timeout` (seconds, as Google APIs take it), in that
 * order; a malformed `grpc-timeout` or `x-server-timeout` is ignored.
 */
export function callRequestHeader(headers: IncomingHttpHeaders): Headers {
  const out = new PlainHeaders();
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(":") || hopByHop.has(name)) continue;
    if (
      (name.startsWith("connect-") && name !== "connect-timeout-ms") ||
      name.startsWith("grpc-")
    ) {
      continue;
    }
    for (const v of Array.isArray(value) ? value : [value]) out.append(name, v);
  }
  if (!out.has("connect-timeout-ms")) {
    const timeoutMs = timeoutFrom(headers);
    if (timeoutMs !== undefined) out.set("connect-timeout-ms", String(timeoutMs));
  }
  return out;
}

function timeoutFrom(headers: IncomingHttpHeaders): number | undefined {
  const grpc = /^([0-9]{1,8})([HMSmun])$/.exec(String(headers["grpc-timeout"] ?? ""));
  if (grpc !== null) {
    return Math.max(1, Math.ceil(Number(grpc[1]) * (grpcTimeoutUnits[grpc[2] ?? "S"] ?? 1000)));
  }
  const seconds = /^[0-9]{1,7}(\.[0-9]+)?$/.exec(String(headers["x-server-timeout"] ?? ""));
  if (seconds !== null) return Math.max(1, Math.ceil(Number(seconds[0]) * 1000));
  return undefined;
}

/**
 * The response headers of a REST response, from the call's headers and trailers (and an error's
 * metadata): without protocol and content headers; a `trailer-` prefix is dropped.
 */
export function restResponseHeaders(...sources: Headers[]): OutgoingHttpHeaders {
  const out: Record<string, string[]> = {};
  for (const source of sources) {
    for (const [key, value] of source) {
      let name = key;
      if (name.startsWith("trailer-")) name = name.slice("trailer-".length);
      if (
        name.startsWith("content-") ||
        name.startsWith("connect-") ||
        name.startsWith("grpc-") ||
        hopByHop.has(name)
      ) {
        continue;
      }
      const values = out[name] ?? [];
      if (!values.includes(value)) values.push(value);
      out[name] = values;
    }
  }
  return out;
}
