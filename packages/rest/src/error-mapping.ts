import { create, type JsonObject, type JsonValue, toJson } from "@bufbuild/protobuf";
import { base64Encode } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";
import { bounded } from "@keel/interceptors";

/**
 * The body of every REST error response, and the last line of a failed NDJSON stream, shaped like
 * Google APIs' errors:
 *
 *     {"error": {"code": 404, "status": "NOT_FOUND", "message": "user 7 not found", "details": []}}
 */
export interface RestErrorBody {
  error: {
    /** The HTTP status of the response. */
    code: number;
    /** The gRPC code name: "NOT_FOUND", "INVALID_ARGUMENT", … */
    status: string;
    /** What went wrong, as the service said it. */
    message: string;
    /**
     * Error details, each a JSON object with its type in `@type`
     * (`type.googleapis.com/errdetails.v1.BadRequest`) and its fields in proto3 JSON.
     */
    details: JsonObject[];
  };
}

/** Each code: its gRPC name and its HTTP status (as Google's). */
const codes: Record<Code, { name: string; status: number }> = {
  [Code.Canceled]: { name: "CANCELLED", status: 499 },
  [Code.Unknown]: { name: "UNKNOWN", status: 500 },
  [Code.InvalidArgument]: { name: "INVALID_ARGUMENT", status: 400 },
  [Code.DeadlineExceeded]: { name: "DEADLINE_EXCEEDED", status: 504 },
  [Code.NotFound]: { name: "NOT_FOUND", status: 404 },
  [Code.AlreadyExists]: { name: "ALREADY_EXISTS", status: 409 },
  [Code.PermissionDenied]: { name: "PERMISSION_DENIED", status: 403 },
  [Code.ResourceExhausted]: { name: "RESOURCE_EXHAUSTED", status: 429 },
  [Code.FailedPrecondition]: { name: "FAILED_PRECONDITION", status: 400 },
  [Code.Aborted]: { name: "ABORTED", status: 409 },
  [Code.OutOfRange]: { name: "OUT_OF_RANGE", status: 400 },
  [Code.Unimplemented]: { name: "UNIMPLEMENTED", status: 501 },
  [Code.Internal]: { name: "INTERNAL", status: 500 },
  [Code.Unavailable]: { name: "UNAVAILABLE", status: 503 },
  [Code.DataLoss]: { name: "DATA_LOSS", status: 500 },
  [Code.Unauthenticated]: { name: "UNAUTHENTICATED", status: 401 },
};

/**
 * The HTTP status for a code, as Google APIs map them: INVALID_ARGUMENT, FAILED_PRECONDITION and
 * OUT_OF_RANGE 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403, NOT_FOUND 404, ALREADY_EXISTS and
 * ABORTED 409, RESOURCE_EXHAUSTED 429, CANCELLED 499, UNIMPLEMENTED 501, UNAVAILABLE 503,
 * DEADLINE_EXCEEDED 504, everything else 500.
 */
export function httpStatusFromCode(code: Code): number {
  return codes[code]?.status ?? 500;
}

/** Errors whose HTTP status is not their code's: no route (404), 405, 413, 415. */
const httpStatuses = new WeakMap<ConnectError, number>();

/** Gives an error an HTTP status of its own, instead of its code's; returns the error. */
export function withHttpStatus(error: ConnectError, status: number): ConnectError {
  httpStatuses.set(error, status);
  return error;
}

/** The HTTP status of an error: its own (see `withHttpStatus`), or its code's. */
export function httpStatusOf(error: ConnectError): number {
  return httpStatuses.get(error) ?? httpStatusFromCode(error.code);
}

/** The gRPC name of a code: "NOT_FOUND". */
export function codeName(code: Code): string {
  return codes[code]?.name ?? "UNKNOWN";
}

/**
 * An error as the client gets it: a ConnectError as it is, anything else INTERNAL "internal
 * error" (the cause kept, never sent).
 */
export function asConnectError(err: unknown): ConnectError {
  return err instanceof ConnectError
    ? err
    : new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}

/** The REST error body of an error; `httpStatus` defaults to the error's (`httpStatusOf`). */
export function restErrorBody(
  error: ConnectError,
  httpStatus = httpStatusOf(error),
): RestErrorBody {
  return {
    error: {
      code: httpStatus,
      status: codeName(error.code),
      message: bounded(error.rawMessage),
      details: error.details.map(detailJson),
    },
  };
}

/** A detail as Google APIs write them: `{"@type": "type.googleapis.com/<type>", …fields}`. */
function detailJson(detail: ConnectError["details"][number]): JsonObject {
  if ("desc" in detail) {
    const json = toJson(detail.desc, create(detail.desc, detail.value));
    return withType(detail.desc.typeName, json);
  }
  // A detail that came over the wire: Connect sends its JSON form along as `debug`.
  if (typeof detail.debug === "object" && detail.debug !== null && !Array.isArray(detail.debug)) {
    return withType(detail.type, detail.debug);
  }
  return { "@type": `type.googleapis.com/${detail.type}`, value: base64Encode(detail.value) };
}

function withType(typeName: string, json: JsonValue): JsonObject {
  const type = `type.googleapis.com/${typeName}`;
  return typeof json === "object" && json !== null && !Array.isArray(json)
    ? { "@type": type, ...json }
    : { "@type": type, value: json };
}
