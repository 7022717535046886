import type * as http2 from "node:http2";
import { type DescMessage, type DescMethod, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { boundedError } from "@keel/interceptors";
import { copyHeaders } from "./plain-headers.ts";

// gRPC over a raw HTTP/2 stream, as the fast path writes and reads it: length-prefixed messages,
// response headers, and the status in the trailers, with connect's own status encoding.

/** Resolves when the stream can take more, or has closed. */
export function drained(stream: http2.ServerHttp2Stream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}

/** One gRPC length-prefixed message; refuses one over the limit as connect does. */
export function encode(output: DescMessage, message: unknown, maxMessageBytes: number): Buffer {
  const payload = toBinary(output, message as never);
  if (payload.length > maxMessageBytes) {
    throw new ConnectError(
      `message size ${payload.length} is larger than configured writeMaxBytes ${maxMessageBytes}`,
      Code.ResourceExhausted,
    );
  }
  const frame = Buffer.allocUnsafe(5 + payload.length);
  frame[0] = 0;
  frame.writeUInt32BE(payload.length, 1);
  frame.set(payload, 5);
  return frame;
}

/**
 * The trailers: the handler's, with the status of `err` (OK when undefined). Like connect, an
 * error that is not a ConnectError is answered as a bare "internal error", never its message; a
 * message longer than 1 KiB is cut (`boundedError`).
 */
export function withStatus(trailer: Headers | undefined, err: unknown): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  if (trailer !== undefined) copyHeaders(trailer, out);
  if (err === undefined) {
    out["grpc-status"] = "0";
    return out;
  }
  const error =
    err instanceof ConnectError
      ? err
      : new ConnectError("internal error", Code.Internal, undefined, undefined, err);
  copyHeaders(setTrailerStatus(new Headers(), boundedError(error)), out);
  return out;
}

/** Sends the response headers: gRPC's, and the handler's. The status follows in trailers. */
export function respondHeaders(stream: http2.ServerHttp2Stream, header: Headers | undefined): void {
  const headers: http2.OutgoingHttpHeaders = {
    ":status": 200,
    "content-type": "application/grpc",
  };
  if (header !== undefined) copyHeaders(header, headers);
  stream.respond(headers, { waitForTrailers: true });
}

/** Ends a response whose headers went out: the last frame (if any), then the trailers. */
export function endWithTrailers(
  stream: http2.ServerHttp2Stream,
  trailers: http2.OutgoingHttpHeaders,
  frame?: Buffer,
): void {
  // Emitted once per stream; taken off by hand, which is cheaper than a `once` wrapper.
  const send = () => {
    stream.off("wantTrailers", send);
    stream.sendTrailers(trailers);
  };
  stream.on("wantTrailers", send);
  stream.end(frame);
}

/** Response headers, the body (if any) and the trailers that carry the status. */
export function respond(
  stream: http2.ServerHttp2Stream,
  header: Headers | undefined,
  trailers: http2.OutgoingHttpHeaders,
  frame: Buffer | undefined,
): void {
  respondHeaders(stream, header);
  endWithTrailers(stream, trailers, frame);
}

/** A response with no message and the error in its trailers: connect's status, message and details. */
export function respondError(
  stream: http2.ServerHttp2Stream,
  err: unknown,
  header: Headers | undefined,
  trailer: Headers | undefined,
): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  respond(stream, header, withStatus(trailer, err), undefined);
}

/**
 * The one message of a unary or server-streaming gRPC request, or the error to answer with
 * (connect's codes and wording).
 */
export function decode(method: DescMethod, body: Buffer): unknown {
  const kind = method.methodKind === "unary" ? "unary" : "server-streaming";
  if (body.length === 0) {
    return new ConnectError(
      `protocol error: missing input message for ${kind} method`,
      Code.Unimplemented,
    );
  }
  if (body.length < 5) return incompleteEnvelope(body.length, 5);
  if (body[0] !== 0) {
    return new ConnectError(
      "protocol error: received compressed message without grpc-encoding",
      Code.Internal,
    );
  }
  const length = body.readUInt32BE(1);
  if (body.length < 5 + length) return incompleteEnvelope(body.length, 5 + length);
  if (body.length > 5 + length) {
    return new ConnectError(
      `protocol error: received extra input message for ${kind} method`,
      Code.Unimplemented,
    );
  }
  try {
    return fromBinary(method.input, body.subarray(5));
  } catch (err) {
    return new ConnectError(
      "failed to parse the request message",
      Code.InvalidArgument,
      undefined,
      undefined,
      err,
    );
  }
}

/** A request that ended inside its one message frame: connect answers the same. */
function incompleteEnvelope(received: number, expected: number): ConnectError {
  return new ConnectError(
    `protocol error: incomplete envelope: the request ended after ${received} of ${expected} bytes`,
    Code.InvalidArgument,
  );
}
