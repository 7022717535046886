import { Code, ConnectError, type ContextValues, type Interceptor } from "@connectrpc/connect";
import { settled } from "./chain.ts";
import { requestIdKey } from "./context.ts";
import { mapError as mapStreamError } from "./streams.ts";

/** The part of a logger the recovery interceptor needs; a pino logger fits. */
export interface ErrorLogger {
  error(fields: Record<string, unknown>, message: string): void;
}

export interface RecoveryOptions {
  /**
   * Translates errors that are not ConnectErrors but have a known meaning (for example a database
   * conflict) into a ConnectError with the right code. Return undefined for anything unknown.
   * Default: nothing is translated.
   */
  mapError?: (err: unknown) => ConnectError | undefined;
  /** Receives the details (stack included) of every unexpected error. Default: `console`. */
  logger?: ErrorLogger;
  /** The message clients see for an unexpected error. Default: "internal error". */
  message?: string;
}

/**
 * Keeps handler failures from reaching clients as `Unknown` with a leaked message: a ConnectError
 * passes through unchanged, a known infrastructure error is translated by `mapError`, and anything
 * else, thrown, rejected or raised in the middle of a stream, becomes INTERNAL with a generic
 * message while the log keeps the original, its stack and the request id (put the request-id
 * interceptor outside this one). The original stays the error's cause.
 */
export function createRecoveryInterceptor(options: RecoveryOptions = {}): Interceptor {
  const mapError = options.mapError ?? (() => undefined);
  const logger = options.logger ?? consoleLogger;
  const message = options.message ?? "internal error";

  const recover = (
    err: unknown,
    method: { name: string; parent: { typeName: string } },
    values: ContextValues,
  ) => {
    if (err instanceof ConnectError) return err;
    const mapped = mapError(err);
    if (mapped !== undefined) return mapped;
    if (err instanceof Error && (err.name === "AbortError" || err.name === "TimeoutError")) {
      return ConnectError.from(err);
    }
    logger.error(
      {
        err,
        procedure: `${method.parent.typeName}/${method.name}`,
        request_id: values.get(requestIdKey) || undefined,
      },
      "unexpected error in handler",
    );
    return new ConnectError(message, Code.Internal, undefined, undefined, err);
  };

  return (next) => (req) =>
    settled(next, req).then(
      (res) =>
        res.stream
          ? {
              ...res,
              message: mapStreamError(res.message, (err) =>
                recover(err, req.method, req.contextValues),
              ),
            }
          : res,
      (err: unknown) => {
        throw recover(err, req.method, req.contextValues);
      },
    );
}

const consoleLogger: ErrorLogger = {
  error: (fields, message) => console.error(message, fields),
};
