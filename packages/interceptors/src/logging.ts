import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor, type StreamRequest } from "@connectrpc/connect";
import { bounded, subjectOf } from "./bounded-text.ts";
import { abortReason, callAborted, callProgressKey } from "./call-progress.ts";
import { type Next, type Request, type Response, settled } from "./chain.ts";
import { peerKey, principalKey, requestIdKey } from "./context.ts";
import { perMethod } from "./per-method.ts";
import type { RefusalSummary } from "./refusal-summary.ts";

/** A log level the logging interceptor writes at. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** A status code by its gRPC name, as it appears in the `code` field: "OK", "NotFound", ... */
export type CodeName = "OK" | keyof typeof Code;

/** The part of a logger the logging interceptor needs; a pino logger fits. */
export interface CallLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
  /** Whether a line at `level` would be written; without it every level is. */
  isLevelEnabled?(level: LogLevel): boolean;
}

export interface LoggingOptions {
  /** Receives one line per finished call. */
  logger: CallLogger;
  /**
   * The level of a call that ended with `code`. It is asked once per code when the interceptor is
   * created, so it must depend on the code only. Default: `defaultLevelFor`.
   */
  levelFor?: (code: CodeName) => LogLevel;
  /**
   * Counts refused calls instead of logging each (`createRefusalSummary`): the first refusal of a
   * method and code in an interval is logged, the others at "debug" only, and one line per interval
   * counts them. Default: none, every call has its line at its level.
   */
  refusals?: RefusalSummary;
}

/**
 * The default levels, those of go-grpc-middleware: "debug" for OK; "info" for the codes that blame
 * the caller or are part of normal operation (Canceled, InvalidArgument, NotFound, AlreadyExists,
 * Unauthenticated, PermissionDenied, FailedPrecondition, OutOfRange, Aborted, ResourceExhausted);
 * "warn" for DeadlineExceeded and Unavailable; "error" for Unknown, Unimplemented, Internal and
 * DataLoss.
 */
export function defaultLevelFor(code: CodeName): LogLevel {
  switch (code) {
    case "OK":
      return "debug";
    case "DeadlineExceeded":
    case "Unavailable":
      return "warn";
    case "Unknown":
    case "Unimplemented":
    case "Internal":
    case "DataLoss":
      return "error";
    default:
      return "info";
  }
}

const message = "finished call";

/** Code names indexed by code, OK (0) included; connect's `Code` has no OK. */
const codeNames: CodeName[] = ["OK"];
for (let code = Code.Canceled; code <= Code.Unauthenticated; code++) {
  codeNames[code] = Code[code] as keyof typeof Code;
}

const grpcTypes: Record<DescMethod["methodKind"], string> = {
  unary: "unary",
  server_streaming: "server_stream",
  client_streaming: "client_stream",
  bidi_streaming: "bidi_stream",
};

interface MethodFields {
  method: string;
  grpcType: string;
}

const fieldsOf = perMethod(
  (method): MethodFields => ({
    method: `${method.parent.typeName}/${method.name}`,
    grpcType: grpcTypes[method.methodKind],
  }),
);

/** What the client was told: a code and, for a failure, the message it got. */
interface Outcome {
  code: Code | 0;
  error: string;
}

const ok: Outcome = { code: 0, error: "" };

/** Passed as the error of a response stream that connect stopped reading before its end. */
const abandoned = Symbol("abandoned");

/**
 * The outcome as the client sees it. A failure that is not a ConnectError reaches the client as
 * connect's bare INTERNAL; a call the client gave up on (or that ran out of time) ended with the
 * reason of the abort, whatever the handler did next.
 */
function outcomeOf(err: unknown, req: Request): Outcome {
  if (err instanceof ConnectError) return { code: err.code, error: err.rawMessage };
  if (callAborted(req)) {
    const reason: unknown = abortReason(req);
    return reason instanceof ConnectError
      ? { code: reason.code, error: reason.rawMessage }
      : { code: Code.Canceled, error: "canceled" };
  }
  if (err === undefined) return ok;
  if (err === abandoned) return { code: Code.Canceled, error: "canceled" };
  return { code: Code.Internal, error: "internal error" };
}

function protocolOf(contentType: string | null): string {
  if (contentType === null) return "connect";
  if (contentType.startsWith("application/grpc-web")) return "grpc-web";
  if (contentType.startsWith("application/grpc")) return "grpc";
  return "connect";
}

interface Counts {
  received: number;
  sent: number;
}

/**
 * Writes one structured line per finished call: `method`, `protocol`, `grpc_type`, `code`,
 * `duration_ms`, and when known `peer`, `request_id` and `user_id` (the principal's subject); for
 * streams `msgs_received` and `msgs_sent`; for failures `error`, the message the client got. A
 * stream's line is written when its response ends: completed, failed or cancelled by the client.
 *
 * Headers and messages are never logged, so neither are tokens or passwords; stacks are the
 * recovery interceptor's business. When the logger says a call's level is disabled, nothing is
 * built.
 */
export function createLoggingInterceptor(options: LoggingOptions): Interceptor {
  const logger = options.logger;
  const levelFor = options.levelFor ?? defaultLevelFor;
  const levels = codeNames.map((name) => levelFor(name));
  const refusals = options.refusals;

  const finish = (req: Request, start: number, err: unknown, counts: Counts | undefined) => {
    const outcome = err === undefined && !callAborted(req) ? ok : outcomeOf(err, req);
    const method = fieldsOf(req.method);
    const code = codeNames[outcome.code] ?? "Unknown";
    let level = levels[outcome.code] ?? "error";
    if (
      outcome.code !== 0 &&
      refusals !== undefined &&
      !refusals.admit(method.method, code, level, req.contextValues.get(peerKey))
    ) {
      level = "debug";
    }
    if (logger.isLevelEnabled !== undefined && !logger.isLevelEnabled(level)) return;

    const fields: Record<string, unknown> = {
      method: method.method,
      protocol:
        req.contextValues.get(callProgressKey)?.protocolName ??
        protocolOf(req.header.get("content-type")),
      grpc_type: method.grpcType,
      code,
      duration_ms: Math.round((performance.now() - start) * 1000) / 1000,
    };
    const values = req.contextValues;
    const peer = values.get(peerKey);
    if (peer !== "") fields.peer = peer;
    const requestId = values.get(requestIdKey);
    if (requestId !== "") fields.request_id = requestId;
    const principal = values.get(principalKey);
    if (principal !== undefined) fields.user_id = subjectOf(principal);
    if (counts !== undefined) {
      fields.msgs_received = counts.received;
      fields.msgs_sent = counts.sent;
    }
    if (outcome.code !== 0) fields.error = bounded(outcome.error);
    logger[level](fields, message);
  };

  return (next) => (req) => {
    const start = performance.now();
    if (req.stream) return streamed(next, req, start);
    // A promise and two closures, not an async function's frame: most calls are unary.
    return settled(next, req).then(
      (res) => {
        finish(req, start, undefined, undefined);
        return res;
      },
      (err: unknown) => {
        finish(req, start, err, undefined);
        throw err;
      },
    );
  };

  async function streamed(next: Next, req: StreamRequest, start: number): Promise<Response> {
    const counts: Counts = { received: 0, sent: 0 };
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next({ ...req, message: countReceived(req.message, counts) });
    } catch (err) {
      finish(req, start, err, counts);
      throw err;
    }
    if (!res.stream) {
      finish(req, start, undefined, counts);
      return res;
    }
    return {
      ...res,
      message: observeSent(res.message, counts, (err) => finish(req, start, err, counts)),
    };
  }
}

/** The request stream, counting the messages the handler takes from it. */
function countReceived<T>(stream: AsyncIterable<T>, counts: Counts): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const it = stream[Symbol.asyncIterator]();
      return {
        next: () =>
          it.next().then((result) => {
            if (result.done !== true) counts.received++;
            return result;
          }),
        return: (value) => it.return?.(value) ?? Promise.resolve({ done: true, value }),
        throw: (err) => it.throw?.(err) ?? Promise.reject(err),
      };
    },
  };
}

/**
 * The response stream, counting the messages sent and calling `end` once when it ends: done,
 * failed, or given up early by connect (the client went away), which connect does through `return`
 * or `throw`.
 */
function observeSent<T>(
  stream: AsyncIterable<T>,
  counts: Counts,
  end: (err: unknown) => void,
): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const it = stream[Symbol.asyncIterator]();
      let ended = false;
      const once = (err: unknown) => {
        if (ended) return;
        ended = true;
        end(err);
      };
      return {
        next: () =>
          it.next().then(
            (result) => {
              if (result.done === true) once(undefined);
              else counts.sent++;
              return result;
            },
            (err: unknown) => {
              once(err);
              throw err;
            },
          ),
        return: (value) => {
          once(abandoned);
          return it.return?.(value) ?? Promise.resolve({ done: true, value });
        },
        throw: (err) => {
          once(err ?? abandoned);
          return it.throw?.(err) ?? Promise.reject(err);
        },
      };
    },
  };
}
