import { type DescField, type DescMessage, type JsonValue, ScalarType } from "@bufbuild/protobuf";
import { isWrapperDesc } from "@bufbuild/protobuf/wkt";

/**
 * The proto3 JSON of a message of type `desc` with every field present, each holding a placeholder
 * of its type: numbers 0, 64-bit integers "0" (JSON carries them as strings), booleans false,
 * strings and bytes "", enums the name of their first value, nested messages their own template,
 * repeated fields [] and maps {}. Well-known types take their JSON form (a Timestamp is an RFC 3339
 * string, a FieldMask a comma-separated string). Of each oneof only the first field is present,
 * since JSON may set one at most. Keys are JSON names (`userId`), as `toJson` writes them.
 *
 * `fromJson(desc, requestTemplate(desc))` always succeeds: the template is a valid request.
 */
export function requestTemplate(desc: DescMessage): JsonValue {
  return messageTemplate(desc, new Set());
}

function messageTemplate(desc: DescMessage, path: Set<string>): JsonValue {
  const wkt = wellKnownTemplate(desc);
  if (wkt !== undefined) return wkt;
  // A message that contains itself, directly or not, would never end: stop at the second visit.
  if (path.has(desc.typeName)) return {};
  path.add(desc.typeName);
  const json: { [key: string]: JsonValue } = {};
  for (const member of desc.members) {
    const field = member.kind === "oneof" ? member.fields[0] : member;
    if (field !== undefined) json[field.jsonName] = fieldTemplate(field, path);
  }
  path.delete(desc.typeName);
  return json;
}

function fieldTemplate(field: DescField, path: Set<string>): JsonValue {
  switch (field.fieldKind) {
    case "list":
      return [];
    case "map":
      return {};
    case "enum":
      return field.enum.typeName === "google.protobuf.NullValue"
        ? null
        : (field.enum.values[0]?.name ?? 0);
    case "message":
      return messageTemplate(field.message, path);
    case "scalar":
      return scalarTemplate(field.scalar);
  }
}

function scalarTemplate(scalar: ScalarType): JsonValue {
  switch (scalar) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return "";
    case ScalarType.BOOL:
      return false;
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return "0";
    default:
      return 0;
  }
}

/** The JSON form of the well-known types that do not map to a plain object. */
function wellKnownTemplate(desc: DescMessage): JsonValue | undefined {
  switch (desc.typeName) {
    case "google.protobuf.Timestamp":
      return "1970-01-01T00:00:00Z";
    case "google.protobuf.Duration":
      return "0s";
    case "google.protobuf.FieldMask":
      return "";
    case "google.protobuf.Struct":
      return {};
    case "google.protobuf.ListValue":
      return [];
    case "google.protobuf.Value":
      return null;
    case "google.protobuf.Any":
      // An Any's JSON needs a real "@type" that the reader can resolve; empty is the only valid one.
      return {};
  }
  // Wrappers (Int64Value, StringValue, …) are written as the value they wrap.
  return isWrapperDesc(desc) ? scalarTemplate(desc.fields[0].scalar) : undefined;
}
