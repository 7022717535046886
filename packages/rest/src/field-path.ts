import type { DescField, DescMessage } from "@bufbuild/protobuf";

/**
 * Well-known types whose proto3 JSON form is a string (or, for wrappers, the wrapped scalar):
 * in a path or a query they are values, not messages to descend into.
 */
export const scalarLikeTypeNames: ReadonlySet<string> = new Set([
  "google.protobuf.Timestamp",
  "google.protobuf.Duration",
  "google.protobuf.FieldMask",
  "google.protobuf.DoubleValue",
  "google.protobuf.FloatValue",
  "google.protobuf.Int64Value",
  "google.protobuf.UInt64Value",
  "google.protobuf.Int32Value",
  "google.protobuf.UInt32Value",
  "google.protobuf.BoolValue",
  "google.protobuf.StringValue",
  "google.protobuf.BytesValue",
]);

/** Whether a message type is written as a single JSON string or scalar (Timestamp, wrappers, …). */
export function isScalarLike(message: DescMessage): boolean {
  return scalarLikeTypeNames.has(message.typeName);
}

/**
 * Resolves a dotted field path (`["book", "author", "name"]`) to its fields, each segment by its
 * proto name or, with `jsonNames`, its JSON name too. Every segment but the last must be a
 * singular message field. Undefined when a segment names no field.
 */
export function resolveFieldPath(
  message: DescMessage,
  path: readonly string[],
  jsonNames: boolean,
): DescField[] | undefined {
  const fields: DescField[] = [];
  let current: DescMessage | undefined = message;
  for (const name of path) {
    if (current === undefined) return undefined;
    const field: DescField | undefined = current.fields.find(
      (f) => f.name === name || (jsonNames && f.jsonName === name),
    );
    if (field === undefined) return undefined;
    fields.push(field);
    current =
      field.fieldKind === "message" && !isScalarLike(field.message) ? field.message : undefined;
  }
  return fields;
}

/** Whether a field holds one value that a path or query can carry (scalar, enum, Timestamp, …). */
export function isSingularValue(field: DescField): boolean {
  return (
    field.fieldKind === "scalar" ||
    field.fieldKind === "enum" ||
    (field.fieldKind === "message" && isScalarLike(field.message))
  );
}

/** Whether a field is a list of values a query can carry (repeated scalar, enum, Timestamp, …). */
export function isRepeatedValue(field: DescField): boolean {
  return (
    field.fieldKind === "list" && (field.listKind !== "message" || isScalarLike(field.message))
  );
}
