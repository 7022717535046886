import { Code, ConnectError } from "@connectrpc/connect";
import { StoreError } from "@keel/store";

/**
 * The one place where store failures become gRPC codes. Messages say what the caller can do and
 * never carry database internals; the original error stays the cause, for the log.
 */
export function storeErrorToConnect(err: unknown): ConnectError | undefined {
  if (!(err instanceof StoreError)) return undefined;
  switch (err.kind) {
    case "already_exists":
      return new ConnectError(
        err.field === undefined ? "already exists" : `${err.field}: already taken; choose another`,
        Code.AlreadyExists,
        undefined,
        undefined,
        err,
      );
    case "not_found":
      return new ConnectError(err.message, Code.NotFound, undefined, undefined, err);
    case "invalid_argument":
      return new ConnectError(
        `invalid request: ${err.message}`,
        Code.InvalidArgument,
        undefined,
        undefined,
        err,
      );
    case "failed_precondition":
      return new ConnectError(err.message, Code.FailedPrecondition, undefined, undefined, err);
    case "unavailable":
      return new ConnectError(
        "the database is unavailable; retry later",
        Code.Unavailable,
        undefined,
        undefined,
        err,
      );
    case "overflow":
      return new ConnectError(
        "the stream fell too far behind the events it follows; reconnect and resume",
        Code.ResourceExhausted,
        undefined,
        undefined,
        err,
      );
  }
}

/** A store error as its ConnectError, anything else unchanged. */
export function asConnect(err: unknown): unknown {
  return storeErrorToConnect(err) ?? err;
}

/** Rethrows a store error as its ConnectError and anything else unchanged; for `.catch`. */
export function rethrowAsConnect(err: unknown): never {
  throw asConnect(err);
}

/** How live streams end when the server stops under them. */
export function shuttingDown(): ConnectError {
  return new ConnectError("the server is shutting down; reconnect", Code.Unavailable);
}
