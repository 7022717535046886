import { type DescMethod, ScalarType } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";

/**
 * The methods of keel's services that only read, and gRPC health checking: safe to send twice.
 * Writes are safe to retry only when they carry an idempotency key.
 */
export const defaultIdempotentMethods: readonly string[] = [
  "user.v1.UserService/GetUser",
  "user.v1.UserService/ListUsers",
  "user.v1.UserService/StreamUserActivities",
  "order.v1.OrderService/GetOrder",
  "order.v1.OrderService/ListOrders",
  "order.v1.OrderService/TrackOrder",
  "grpc.health.v1.Health/Check",
  "grpc.health.v1.Health/Watch",
];

export interface IdempotencyOptions {
  /**
   * Methods, as `package.Service/Method`, that may be sent more than once. Methods whose proto
   * sets `option idempotency_level` to NO_SIDE_EFFECTS or IDEMPOTENT are idempotent too.
   * Default `defaultIdempotentMethods`.
   */
  idempotentMethods?: readonly string[];
  /**
   * The request field (its proto name) that makes a write idempotent when it is set: the server
   * answers a repeated key with the first outcome. Default "idempotency_key".
   */
  idempotencyKeyField?: string;
}

/** Decides whether a call of `method` with request `message` may be sent more than once. */
export type IdempotencyCheck = (method: DescMethod, message: unknown) => boolean;

/**
 * An idempotency check: a call is idempotent when its method is listed or declared idempotent in
 * its proto, or when its request carries a non-empty idempotency key.
 */
export function createIdempotencyCheck(options: IdempotencyOptions = {}): IdempotencyCheck {
  const listed = new Set(options.idempotentMethods ?? defaultIdempotentMethods);
  const keyField = options.idempotencyKeyField ?? "idempotency_key";
  // The key's JSON-style local name per request type, or null when the type has no such field.
  const keys = new Map<string, string | null>();
  const keyOf = (method: DescMethod): string | null => {
    let key = keys.get(method.input.typeName);
    if (key === undefined) {
      const field = method.input.fields.find((f) => f.name === keyField);
      key =
        field !== undefined && field.fieldKind === "scalar" && field.scalar === ScalarType.STRING
          ? field.localName
          : null;
      keys.set(method.input.typeName, key);
    }
    return key;
  };
  return (method, message) => {
    if (
      method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS ||
      method.idempotency === MethodOptions_IdempotencyLevel.IDEMPOTENT ||
      listed.has(`${method.parent.typeName}/${method.name}`)
    ) {
      return true;
    }
    const key = keyOf(method);
    if (key === null || typeof message !== "object" || message === null) return false;
    const value = (message as Record<string, unknown>)[key];
    return typeof value === "string" && value !== "";
  };
}
