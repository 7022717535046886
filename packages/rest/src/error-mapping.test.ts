import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { base64Encode } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, RetryInfoSchema } from "@keel/gen/errdetails/v1/errdetails_pb";
import { codeName, httpStatusFromCode, restErrorBody } from "./error-mapping.ts";

describe("httpStatusFromCode", () => {
  it("maps codes to statuses as Google APIs do", () => {
    const expected: [Code, number, string][] = [
      [Code.Canceled, 499, "CANCELLED"],
      [Code.Unknown, 500, "UNKNOWN"],
      [Code.InvalidArgument, 400, "INVALID_ARGUMENT"],
      [Code.DeadlineExceeded, 504, "DEADLINE_EXCEEDED"],
      [Code.NotFound, 404, "NOT_FOUND"],
      [Code.AlreadyExists, 409, "ALREADY_EXISTS"],
      [Code.PermissionDenied, 403, "PERMISSION_DENIED"],
      [Code.ResourceExhausted, 429, "RESOURCE_EXHAUSTED"],
      [Code.FailedPrecondition, 400, "FAILED_PRECONDITION"],
      [Code.Aborted, 409, "ABORTED"],
      [Code.OutOfRange, 400, "OUT_OF_RANGE"],
      [Code.Unimplemented, 501, "UNIMPLEMENTED"],
      [Code.Internal, 500, "INTERNAL"],
      [Code.Unavailable, 503, "UNAVAILABLE"],
      [Code.DataLoss, 500, "DATA_LOSS"],
      [Code.Unauthenticated, 401, "UNAUTHENTICATED"],
    ];
    for (const [code, status, name] of expected) {
      assert.equal(httpStatusFromCode(code), status, name);
      assert.equal(codeName(code), name);
    }
  });
});

describe("restErrorBody", () => {
  it("carries the status, the code name, the message and the details with their type", () => {
    const error = new ConnectError("invalid request: username: too short", Code.InvalidArgument);
    error.details.push({
      desc: BadRequestSchema,
      value: { fieldViolations: [{ field: "username", description: "too short" }] },
    });
    assert.deepEqual(restErrorBody(error), {
      error: {
        code: 400,
        status: "INVALID_ARGUMENT",
        message: "invalid request: username: too short",
        details: [
          {
            "@type": "type.googleapis.com/errdetails.v1.BadRequest",
            fieldViolations: [{ field: "username", description: "too short" }],
          },
        ],
      },
    });
  });

  it("takes another HTTP status when given one", () => {
    const body = restErrorBody(new ConnectError("no route", Code.NotFound), 405);
    assert.deepEqual(body.error, {
      code: 405,
      status: "NOT_FOUND",
      message: "no route",
      details: [],
    });
  });
});

describe("restErrorBody of an error from another service", () => {
  it("writes details that came over the wire with their debug form, or their bytes", () => {
    const retry = create(RetryInfoSchema, { retryDelay: { seconds: 3n } });
    const value = toBinary(RetryInfoSchema, retry);
    const error = new ConnectError("slow down", Code.ResourceExhausted);
    error.details.push(
      { type: "errdetails.v1.RetryInfo", value, debug: { retryDelay: "3s" } },
      { type: "errdetails.v1.RetryInfo", value },
    );
    assert.deepEqual(restErrorBody(error).error.details, [
      { "@type": "type.googleapis.com/errdetails.v1.RetryInfo", retryDelay: "3s" },
      {
        "@type": "type.googleapis.com/errdetails.v1.RetryInfo",
        value: base64Encode(value),
      },
    ]);
    assert.equal(restErrorBody(error).error.code, 429);
  });
});
