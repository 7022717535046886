import { type DescField, type DescMessage, type JsonValue, ScalarType } from "@bufbuild/protobuf";

/** The HTTP response body made of an RPC response in proto3 JSON. */
export type ResponseBody = (json: JsonValue) => JsonValue;

/**
 * Makes, once per rule, what turns an RPC response in proto3 JSON into the HTTP response body,
 * per the rule's `response_body`: the whole message when "", otherwise the value of that top-level
 * field, or the field's default value when the message omits it (proto3 JSON leaves out fields at
 * their defaults).
 */
export function responseBodyOf(output: DescMessage, responseBody: string): ResponseBody {
  const field = output.fields.find((f) => f.name === responseBody);
  if (responseBody === "" || field === undefined) return (json) => json;
  const fallback = defaultJson(field);
  return (json) => {
    if (typeof json === "object" && json !== null && !Array.isArray(json)) {
      const value = json[field.jsonName] ?? json[field.name];
      if (value !== undefined && value !== null) return value;
    }
    return fallback;
  };
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
