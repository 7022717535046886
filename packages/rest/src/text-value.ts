import { type DescEnum, type DescField, type JsonValue, ScalarType } from "@bufbuild/protobuf";
import { quote } from "@keel/interceptors";
import { scalarLikeTypeNames } from "./field-path.ts";

/** What one value of a field is: a scalar, an enum or a (scalar-like) message. */
type ValueType =
  | { kind: "scalar"; scalar: ScalarType }
  | { kind: "enum"; enum: DescEnum }
  | { kind: "message"; typeName: string; wrapped: ValueType | undefined };

const int = /^-?[0-9]+$/;
const float = /^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/;
const base64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/**
 * Turns one value of a field, as text from a URL path or query, into its proto3 JSON form: int32
 * and friends become numbers, 64-bit integers stay decimal strings, booleans `true`/`false`
 * (or `1`/`0`), enums their name (a number is accepted too), Timestamp, Duration and FieldMask
 * stay strings, wrappers become their wrapped value. For a repeated field, the value of one
 * element. Throws an Error saying what was expected.
 */
export function textToJson(field: DescField, text: string): JsonValue {
  return convert(valueType(field), text);
}

function valueType(field: DescField): ValueType {
  switch (field.fieldKind) {
    case "scalar":
      return { kind: "scalar", scalar: field.scalar };
    case "enum":
      return { kind: "enum", enum: field.enum };
    case "message":
      return messageType(field.message.typeName, field.message.fields[0]);
    case "list":
      if (field.listKind === "scalar") return { kind: "scalar", scalar: field.scalar };
      if (field.listKind === "enum") return { kind: "enum", enum: field.enum };
      return messageType(field.message.typeName, field.message.fields[0]);
    case "map":
      throw new Error("a map cannot be set from a URL");
  }
}

function messageType(typeName: string, first: DescField | undefined): ValueType {
  // google.protobuf.Int64Value and friends, but not google.protobuf.Value (any JSON).
  const wrapper = scalarLikeTypeNames.has(typeName) && typeName.endsWith("Value");
  return {
    kind: "message",
    typeName,
    wrapped: wrapper && first !== undefined ? valueType(first) : undefined,
  };
}

function convert(type: ValueType, text: string): JsonValue {
  switch (type.kind) {
    case "scalar":
      return scalar(type.scalar, text);
    case "enum": {
      if (type.enum.values.some((v) => v.name === text)) return text;
      if (int.test(text)) return integer(text, -(2 ** 31), 2 ** 31 - 1);
      const names = type.enum.values.map((v) => v.name).join(", ");
      throw new Error(`expected one of ${names}, got ${quote(text)}`);
    }
    case "message":
      if (type.wrapped !== undefined) return convert(type.wrapped, text);
      // Timestamp (RFC 3339), Duration ("1.5s"), FieldMask ("a,b.c"): checked when parsed.
      return text;
  }
}

function scalar(type: ScalarType, text: string): JsonValue {
  switch (type) {
    case ScalarType.STRING:
      return text;
    case ScalarType.BYTES:
      if (!base64.test(text)) throw new Error(`expected base64, got ${quote(text)}`);
      return text;
    case ScalarType.BOOL:
      if (text === "true" || text === "1") return true;
      if (text === "false" || text === "0") return false;
      throw new Error(`expected true or false, got ${quote(text)}`);
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return integer(text, -(2 ** 31), 2 ** 31 - 1);
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return integer(text, 0, 2 ** 32 - 1);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return bigInteger(text, -(2n ** 63n), 2n ** 63n - 1n);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return bigInteger(text, 0n, 2n ** 64n - 1n);
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE:
      if (text === "NaN" || text === "Infinity" || text === "-Infinity") return text;
      if (!float.test(text)) throw new Error(`expected a number, got ${quote(text)}`);
      return Number(text);
  }
}

function integer(text: string, min: number, max: number): number {
  const value = int.test(text) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max)) {
    throw new Error(`expected an integer from ${min} to ${max}, got ${quote(text)}`);
  }
  return value;
}

/** 64-bit integers stay strings in proto3 JSON: numbers would lose precision. */
function bigInteger(text: string, min: bigint, max: bigint): string {
  if (!int.test(text) || BigInt(text) < min || BigInt(text) > max) {
    throw new Error(`expected an integer from ${min} to ${max}, got ${quote(text)}`);
  }
  return BigInt(text).toString();
}
