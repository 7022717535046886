import { type DescField, type DescMessage, type JsonValue, ScalarType } from "@bufbuild/protobuf";

/**
 * The HTTP response body of an RPC response in proto3 JSON, per its rule's `response_body`: the
 * whole message when "", otherwise the value of that top-level field, or the field's default
 * value when the message omits it (proto3 JSON leaves out fields at their defaults).
 */
export function responseJson(
  output: DescMessage,
  responseBody: string,
  json: JsonValue,
): JsonValue {
  if (responseBody === "") return json;
  const field = output.fields.find((f) => f.name === responseBody);
  if (field === undefined) return json;
  if (typeof json === "object" && json !== null && !Array.isArray(json)) {
    const value = json[field.jsonName] ?? json[field.name];
    if (value !== undefined && value !== null) return value;
  }
  return defaultJson(field);
}

/** The proto3 JSON form of a field's default value. */
function defaultJson(field: DescField): JsonValue {
  switch (field.fieldKind) {
    case "list":
      return [];
    case "map":
    case "message":
      return {};
    case "enum":
      return field.enum.values.find((v) => v.number === 0)?.name ?? 0;
    case "scalar":
      switch (field.scalar) {
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
}
