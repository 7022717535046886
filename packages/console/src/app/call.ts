import {
  type DescMethod,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  fromJson,
  type JsonValue,
  type Message,
  toJson,
} from "@bufbuild/protobuf";
import { Code, ConnectError, type Transport } from "@connectrpc/connect";

export interface CallOptions {
  /** How to reach the server; the console uses Connect with JSON on its own origin. */
  transport: Transport;
  /** A unary or server-streaming method; other kinds are answered with `sent: false`. */
  method: DescMethod;
  /** The request as proto3 JSON text. */
  request: string;
  /** Sent as `authorization: Bearer <token>` when set. */
  token?: string | undefined;
  /** Cancels the call (the Stop button). */
  signal?: AbortSignal;
  /** Called with each response message as it arrives, counting from 0. */
  onMessage?: (message: JsonValue, index: number) => void;
}

/** What a call came to. */
export interface CallResult {
  /** False when the request never left: not JSON, not the method's input, or not callable. */
  sent: boolean;
  /** "OK", or the error's code as gRPC names it: "NOT_FOUND", "UNAUTHENTICATED", … */
  status: string;
  /** The error's message; empty on success. */
  message: string;
  /** Every response message received, as JSON, also those before a streaming call failed. */
  messages: JsonValue[];
  /** From sending the request to the end of the response, in milliseconds. */
  elapsedMs: number;
  /** The `x-request-id` the server answered with, to find the call in its logs. */
  requestId: string | null;
}

/**
 * Calls a unary or server-streaming method with a request written as JSON, and reports the
 * outcome instead of throwing: the console shows failures, it does not stop at them.
 */
export async function callMethod(options: CallOptions): Promise<CallResult> {
  const { transport, method } = options;
  const notSent = (message: string): CallResult => ({
    sent: false,
    status: "NOT_SENT",
    message,
    messages: [],
    elapsedMs: 0,
    requestId: null,
  });
  if (!isUnary(method) && !isServerStreaming(method)) {
    return notSent(`${method.name} is ${method.methodKind}: not callable from a browser`);
  }
  let input: Message;
  try {
    input = fromJson(method.input, JSON.parse(options.request) as JsonValue);
  } catch (err) {
    return notSent(`the request is not a valid ${method.input.typeName}: ${errorText(err)}`);
  }
  const header = new Headers();
  if (options.token) header.set("authorization", `Bearer ${options.token}`);
  const messages: JsonValue[] = [];
  const received = (message: Message) => {
    const json = toJson(method.output, message);
    messages.push(json);
    options.onMessage?.(json, messages.length - 1);
  };
  const started = performance.now();
  const done = (status: string, message: string, requestId: string | null): CallResult => ({
    sent: true,
    status,
    message,
    messages,
    elapsedMs: performance.now() - started,
    requestId,
  });
  try {
    if (isUnary(method)) {
      const res = await transport.unary(method, options.signal, undefined, header, input);
      received(res.message);
      return done("OK", "", res.header.get("x-request-id"));
    }
    const res = await transport.stream(method, options.signal, undefined, header, single(input));
    for await (const message of res.message) received(message);
    return done("OK", "", res.header.get("x-request-id"));
  } catch (err) {
    const error = ConnectError.from(err);
    return done(codeName(error.code), error.rawMessage, error.metadata.get("x-request-id"));
  }
}

/** A code's name as gRPC and the rest of keel spell it: `Code.NotFound` → "NOT_FOUND". */
export function codeName(code: Code): string {
  return (Code[code] ?? "UNKNOWN").replace(/(?<=[a-z])(?=[A-Z])/g, "_").toUpperCase();
}

function isUnary(method: DescMethod): method is DescMethodUnary {
  return method.methodKind === "unary";
}

function isServerStreaming(method: DescMethod): method is DescMethodServerStreaming {
  return method.methodKind === "server_streaming";
}

async function* single(message: Message): AsyncIterable<Message> {
  yield message;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
