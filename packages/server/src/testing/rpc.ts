import assert from "node:assert/strict";
import type * as http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";

/** Asserts that `call` fails with `code` and a message matching `message`. */
export async function rejectsWith(
  call: Promise<unknown>,
  code: Code,
  message?: RegExp,
): Promise<void> {
  await assert.rejects(call, (err: unknown) => {
    assert.ok(err instanceof ConnectError, `expected a ConnectError, got ${String(err)}`);
    assert.equal(Code[err.code], Code[code], err.message);
    if (message !== undefined) assert.match(err.rawMessage, message);
    return true;
  });
}

/** "ok" when `call` succeeds, else its code and message as "PermissionDenied: …", for tables. */
export async function outcomeOf(call: unknown): Promise<string> {
  try {
    await call;
    return "ok";
  } catch (err) {
    const e = ConnectError.from(err);
    return `${Code[e.code]}: ${e.rawMessage}`;
  }
}

/** "ok" when `call` succeeds, else the name of its code ("ResourceExhausted"), for tables. */
export async function codeOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return "ok";
  } catch (err) {
    return Code[ConnectError.from(err).code];
  }
}

export async function* iterate<T>(items: T[]): AsyncIterable<T> {
  yield* items;
}

/** Reads from a live stream until `count` messages arrived. */
export async function take<T>(iterator: AsyncIterator<T>, count: number): Promise<T[]> {
  const out: T[] = [];
  while (out.length < count) {
    const next = await iterator.next();
    if (next.done) throw new Error(`stream ended after ${out.length} of ${count} messages`);
    out.push(next.value);
  }
  return out;
}

/** A client-to-server message stream the test can write to while the call is open. */
export function pushable<T>() {
  const queue: T[] = [];
  let wake: (() => void) | undefined;
  let done = false;
  return {
    push(value: T) {
      queue.push(value);
      wake?.();
    },
    end() {
      done = true;
      wake?.();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (queue.length > 0) yield queue.shift() as T;
        else if (done) return;
        else await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
}

/** A gRPC length-prefixed message: flag byte, 4-byte big-endian length, payload. */
export function frame(payload: Uint8Array, flag = 0, length = payload.length): Buffer {
  const out = Buffer.alloc(5 + payload.length);
  out[0] = flag;
  out.writeUInt32BE(length, 1);
  out.set(payload, 5);
  return out;
}

/** What one raw HTTP/2 request got back. */
export interface RawResponse {
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
}

/** Posts `body` on `session` as a gRPC request to `path` and collects the whole response. */
export function rawGrpcRequest(
  session: http2.ClientHttp2Session,
  path: string,
  body: Buffer,
  extraHeaders: http2.OutgoingHttpHeaders = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...extraHeaders,
    });
    const chunks: Buffer[] = [];
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    stream.on("response", (h) => {
      headers = h;
    });
    stream.on("trailers", (t) => {
      trailers = t;
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", reject);
    stream.on("end", () => resolve({ headers, trailers, body: Buffer.concat(chunks) }));
    stream.end(body);
  });
}
