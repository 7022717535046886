import { type DescEnum, type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { commentOf } from "./comments.ts";

/** An OpenAPI 3.0 Schema Object, as far as messages need it. */
export interface OpenApiSchema {
  type?: "object" | "array" | "string" | "integer" | "number" | "boolean";
  format?: string;
  description?: string;
  enum?: string[];
  items?: OpenApiSchema;
  properties?: Record<string, OpenApiSchema>;
  additionalProperties?: OpenApiSchema | boolean;
  required?: string[];
  nullable?: boolean;
  pattern?: string;
  minimum?: number;
  allOf?: OpenApiSchema[];
  $ref?: string;
}

/** Builds schemas for fields and messages, collecting the messages and enums they refer to. */
export interface SchemaCollector {
  /** Every message and enum referred to so far, by type name, for `components.schemas`. */
  readonly components: Record<string, OpenApiSchema>;
  /** A message's schema: a `$ref` to its component, or inline for a well-known type. */
  message(message: DescMessage): OpenApiSchema;
  /** A field's schema (one value of a repeated field with `element`), with its comment. */
  field(field: DescField, element?: boolean): OpenApiSchema;
}

/**
 * Schemas in proto3 JSON terms: fields by JSON name, 64-bit integers as strings, enums as
 * string enums, Timestamp as a `date-time` string, Duration and FieldMask as strings, wrappers as
 * nullable scalars, maps as objects with `additionalProperties`, repeated fields as arrays.
 * Comments become descriptions.
 */
export function createSchemaCollector(): SchemaCollector {
  const components: Record<string, OpenApiSchema> = {};

  const ref = (desc: DescMessage | DescEnum): OpenApiSchema => {
    if (components[desc.typeName] === undefined) {
      components[desc.typeName] = {}; // taken, for recursive messages
      components[desc.typeName] = desc.kind === "enum" ? enumSchema(desc) : objectSchema(desc);
    }
    return { $ref: `#/components/schemas/${desc.typeName}` };
  };
  const message = (m: DescMessage): OpenApiSchema => wellKnown(m) ?? ref(m);
  const objectSchema = (m: DescMessage): OpenApiSchema => {
    const properties: Record<string, OpenApiSchema> = {};
    for (const f of m.fields) properties[f.jsonName] = field(f);
    return described({ type: "object", properties }, commentOf(m));
  };
  const value = (f: DescField): OpenApiSchema => {
    switch (f.fieldKind) {
      case "scalar":
        return scalarSchema(f.scalar);
      case "enum":
        return ref(f.enum);
      case "message":
        return message(f.message);
      case "list":
        return f.listKind === "scalar"
          ? scalarSchema(f.scalar)
          : f.listKind === "enum"
            ? ref(f.enum)
            : message(f.message);
      case "map":
        return f.mapKind === "scalar"
          ? scalarSchema(f.scalar)
          : f.mapKind === "enum"
            ? ref(f.enum)
            : message(f.message);
    }
  };
  const field = (f: DescField, element = false): OpenApiSchema => {
    let schema = value(f);
    if (!element && f.fieldKind === "list") schema = { type: "array", items: schema };
    if (f.fieldKind === "map") schema = { type: "object", additionalProperties: schema };
    return described(schema, commentOf(f));
  };
  return { components, message, field };
}

/** Adds a description; next to a `$ref`, which OpenAPI 3.0 reads alone, through `allOf`. */
function described(schema: OpenApiSchema, description: string | undefined): OpenApiSchema {
  if (description === undefined) return schema;
  if (schema.$ref !== undefined) return { allOf: [schema], description };
  return { ...schema, description };
}

function enumSchema(desc: DescEnum): OpenApiSchema {
  const documented = desc.values
    .map((v) => ({ name: v.name, comment: commentOf(v) }))
    .filter((v) => v.comment !== undefined)
    .map((v) => `- \`${v.name}\`: ${v.comment}`);
  const description = [commentOf(desc), documented.join("\n")].filter((s) => s).join("\n\n");
  return described(
    { type: "string", enum: desc.values.map((v) => v.name) },
    description === "" ? undefined : description,
  );
}

function scalarSchema(scalar: ScalarType): OpenApiSchema {
  switch (scalar) {
    case ScalarType.DOUBLE:
      return { type: "number", format: "double" };
    case ScalarType.FLOAT:
      return { type: "number", format: "float" };
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return { type: "string", format: "int64" };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return { type: "string", format: "uint64" };
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: "integer", format: "int32" };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", format: "int64", minimum: 0 };
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BYTES:
      return { type: "string", format: "byte" };
  }
}

/** The inline schema of a well-known type with a JSON form of its own; undefined for others. */
function wellKnown(message: DescMessage): OpenApiSchema | undefined {
  switch (message.typeName) {
    case "google.protobuf.Timestamp":
      return { type: "string", format: "date-time" };
    case "google.protobuf.Duration":
      return { type: "string", pattern: "^-?[0-9]+(\\.[0-9]{1,9})?s$" };
    case "google.protobuf.FieldMask":
      return { type: "string" };
    case "google.protobuf.Struct":
      return { type: "object", additionalProperties: true };
    case "google.protobuf.Value":
      return {};
    case "google.protobuf.ListValue":
      return { type: "array", items: {} };
    case "google.protobuf.Empty":
      return { type: "object" };
    case "google.protobuf.Any":
      return {
        type: "object",
        properties: { "@type": { type: "string" } },
        additionalProperties: true,
      };
    case "google.protobuf.DoubleValue":
    case "google.protobuf.FloatValue":
    case "google.protobuf.Int64Value":
    case "google.protobuf.UInt64Value":
    case "google.protobuf.Int32Value":
    case "google.protobuf.UInt32Value":
    case "google.protobuf.BoolValue":
    case "google.protobuf.StringValue":
    case "google.protobuf.BytesValue": {
      const inner = message.fields[0];
      return inner?.fieldKind === "scalar"
        ? { ...scalarSchema(inner.scalar), nullable: true }
        : undefined;
    }
    default:
      return undefined;
  }
}
