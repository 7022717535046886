import { constants } from "node:http2";
import { Code } from "@connectrpc/connect";

// How a call's status is read off the wire when no grpc-status (or Connect error) says it, as the
// gRPC specification maps it. HTTP statuses and Connect code names: connect's own mappings.

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
