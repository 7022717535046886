import { constants } from "node:http2";
import { Code } from "@connectrpc/connect";

// How a call's status is read off the wire when no grpc-status (or Connect error) says it, as the
// gRPC and Connect specifications map it.

/** The code of an HTTP status without a gRPC status (gRPC's http-grpc-status-mapping). */
export function codeOfHttpStatus(status: number): Code {
  switch (status) {
    case 400:
      return Code.Internal;
    case 401:
      return Code.Unauthenticated;
    case 403:
      return Code.PermissionDenied;
    case 404:
      return Code.Unimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return Code.Unavailable;
    default:
      return Code.Unknown;
  }
}

/** The code of a stream reset by the peer. */
export function codeOfRstCode(rstCode: number): Code {
  switch (rstCode) {
    case constants.NGHTTP2_REFUSED_STREAM:
      return Code.Unavailable;
    case constants.NGHTTP2_CANCEL:
      return Code.Canceled;
    case constants.NGHTTP2_ENHANCE_YOUR_CALM:
      return Code.ResourceExhausted;
    case constants.NGHTTP2_INADEQUATE_SECURITY:
      return Code.PermissionDenied;
    default:
      return Code.Internal;
  }
}

const connectCodes = new Map<string, Code>();
for (const [name, value] of Object.entries(Code)) {
  if (typeof value === "number") {
    connectCodes.set(name.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase(), value);
  }
}

/** The code of a Connect error's `code` ("resource_exhausted"); Unknown when it is not one. */
export function codeOfConnectName(name: unknown): Code {
  return (typeof name === "string" ? connectCodes.get(name) : undefined) ?? Code.Unknown;
}

/**
 * The status in gRPC(-Web) trailers; -1 when there is none. gRPC-Web sends them as the text of
 * its last frame, `grpc-status:0\r\ngrpc-message:…\r\n`.
 */
export function statusOfTrailers(trailers: Record<string, unknown> | string): {
  code: number;
  message: string;
} {
  let status: unknown;
  let message: unknown;
  if (typeof trailers === "string") {
    for (const line of trailers.split("\r\n")) {
      const colon = line.indexOf(":");
      const name = line.slice(0, colon).trim().toLowerCase();
      if (name === "grpc-status") status = line.slice(colon + 1).trim();
      if (name === "grpc-message") message = line.slice(colon + 1).trim();
    }
  } else {
    status = trailers["grpc-status"];
    message = trailers["grpc-message"];
  }
  if (typeof status !== "string" || !/^\d+$/.test(status)) return { code: -1, message: "" };
  const code = Number(status);
  let text = typeof message === "string" ? message : "";
  if (code !== 0 && text !== "") {
    try {
      text = decodeURIComponent(text);
    } catch {
      // Not percent-encoded after all: shown as sent.
    }
  }
  return { code, message: text };
}
