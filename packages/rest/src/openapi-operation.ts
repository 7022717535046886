import type { DescField, DescMessage } from "@bufbuild/protobuf";
import { commentOf } from "./comments.ts";
import { isRepeatedValue, isSingularValue, resolveFieldPath } from "./field-path.ts";
import type { HttpBinding } from "./http-rule.ts";
import type { OpenApiSchema, SchemaCollector } from "./openapi-schemas.ts";
import { templateText } from "./path-template.ts";

/** An OpenAPI 3.0 Operation Object. */
export interface OpenApiOperation {
  operationId: string;
  tags: string[];
  summary: string;
  description?: string;
  parameters: OpenApiParameter[];
  requestBody?: { content: Record<string, { schema: OpenApiSchema }> };
  responses: Record<
    string,
    { description: string; content: Record<string, { schema: OpenApiSchema }> }
  >;
  security?: Record<string, string[]>[];
}

/** An OpenAPI 3.0 Parameter Object. */
export interface OpenApiParameter {
  name: string;
  in: "path" | "query";
  required?: boolean;
  description?: string;
  schema: OpenApiSchema;
  style?: "form";
  explode?: boolean;
}

/** The media type of server-streaming responses: one JSON object per line. */
export const ndjson = "application/x-ndjson";

const errorRef = { $ref: "#/components/schemas/Error" };

/**
 * The operation of one HTTP binding: path parameters (by proto name, as in the template), query
 * parameters (every other value field, by JSON name, nested ones dotted), the request body, the
 * response (NDJSON for server streams) and the error response.
 */
export function operationOf(
  binding: HttpBinding,
  operationId: string,
  isPublic: boolean,
  schemas: SchemaCollector,
): OpenApiOperation {
  const { method, template } = binding;
  const bound = template.variables.map((v) => v.fieldPath.join("."));
  const parameters: OpenApiParameter[] = template.variables.map((v) => {
    const fields = resolveFieldPath(method.input, v.fieldPath, false) ?? [];
    const leaf = fields.at(-1) as DescField;
    const inner = templateText(template, v.start, v.end);
    const matches = inner === "*" ? undefined : `Matches \`${inner}\`.`;
    return described(
      {
        name: v.fieldPath.join("."),
        in: "path",
        required: true,
        schema: withoutDescription(schemas.field(leaf)),
      },
      [commentOf(leaf), matches].filter((s) => s !== undefined).join(" ") || undefined,
    );
  });
  if (binding.body !== "*") {
    const skip = (path: string) => bound.includes(path) || path.split(".")[0] === binding.body;
    parameters.push(...queryParameters(method.input, [], skip, schemas, new Set()));
  }
  const description = commentOf(method);
  const body = requestBodySchema(binding, bound, schemas);
  return {
    operationId,
    tags: [method.parent.typeName],
    summary: method.name,
    ...(description === undefined ? {} : { description }),
    parameters,
    ...(body === undefined
      ? {}
      : { requestBody: { content: { "application/json": { schema: body } } } }),
    responses: {
      "200": responseOf(binding, schemas),
      default: {
        description: "An error: the HTTP status follows the gRPC code, as Google APIs map them.",
        content: { "application/json": { schema: errorRef } },
      },
    },
    ...(isPublic ? { security: [] } : {}),
  };
}

/** Query parameters: every value field not in the path or the body, nested ones dotted. */
function queryParameters(
  message: DescMessage,
  prefix: DescField[],
  skip: (protoPath: string) => boolean,
  schemas: SchemaCollector,
  seen: Set<string>,
): OpenApiParameter[] {
  const out: OpenApiParameter[] = [];
  for (const field of message.fields) {
    const path = [...prefix, field];
    if (skip(path.map((f) => f.name).join("."))) continue;
    const name = path.map((f) => f.jsonName).join(".");
    if (isSingularValue(field) || isRepeatedValue(field)) {
      const { description, ...schema } = schemas.field(field);
      const parameter: OpenApiParameter = described({ name, in: "query", schema }, description);
      if (field.fieldKind === "list") Object.assign(parameter, { style: "form", explode: true });
      out.push(parameter);
    } else if (field.fieldKind === "message" && !seen.has(field.message.typeName)) {
      const inner = new Set(seen).add(field.message.typeName);
      out.push(...queryParameters(field.message, path, skip, schemas, inner));
    }
  }
  return out;
}

function requestBodySchema(
  binding: HttpBinding,
  bound: string[],
  schemas: SchemaCollector,
): OpenApiSchema | undefined {
  const input = binding.method.input;
  if (binding.body === "") return undefined;
  if (binding.body !== "*") {
    const field = input.fields.find((f) => f.name === binding.body) as DescField;
    return schemas.field(field);
  }
  if (!input.fields.some((f) => bound.includes(f.name))) return schemas.message(input);
  // The fields the path sets are not part of the body.
  const properties: Record<string, OpenApiSchema> = {};
  for (const f of input.fields)
    if (!bound.includes(f.name)) properties[f.jsonName] = schemas.field(f);
  const schema: OpenApiSchema = { type: "object", properties };
  return described(schema, commentOf(input));
}

function responseOf(
  binding: HttpBinding,
  schemas: SchemaCollector,
): OpenApiOperation["responses"][string] {
  const output = binding.method.output;
  const field = output.fields.find((f) => f.name === binding.responseBody);
  const schema = field === undefined ? schemas.message(output) : schemas.field(field);
  const what =
    field === undefined
      ? `\`${output.typeName}\``
      : `the \`${field.name}\` of \`${output.typeName}\``;
  if (binding.method.methodKind === "server_streaming") {
    return {
      description:
        `A stream in newline-delimited JSON: ${what} per line, as they come. A stream that fails ` +
        'after it started ends with an error line, `{"error": {…}}`, as in an error response.',
      content: { [ndjson]: { schema } },
    };
  }
  return { description: `OK: ${what}.`, content: { "application/json": { schema } } };
}

function described<T extends object>(value: T, description: string | undefined): T {
  return description === undefined ? value : { ...value, description };
}

function withoutDescription(schema: OpenApiSchema): OpenApiSchema {
  const { description: _, ...rest } = schema;
  return rest;
}
