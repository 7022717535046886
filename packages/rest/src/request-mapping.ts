import {
  create,
  type DescField,
  type DescMessage,
  fromJson,
  type JsonObject,
  type JsonValue,
  type Message,
} from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "@keel/gen/errdetails/v1/errdetails_pb";
import { maxQuotedChars, quote } from "@keel/interceptors";
import { isRepeatedValue, isSingularValue, resolveFieldPath } from "./field-path.ts";
import { textToJson } from "./text-value.ts";

/** The parts of an HTTP request that make the RPC's request message. */
export interface HttpRequestParts {
  /** The path variables' values by dotted field path ("book.name"), decoded. */
  pathVariables: ReadonlyMap<string, string>;
  query: URLSearchParams;
  /** The parsed JSON body; undefined when the request has none. */
  body: JsonValue | undefined;
}

/**
 * Builds the request message of an HTTP request, per its rule's `body`:
 * - `"*"`: the body is the message (an empty body is `{}`); a query is refused.
 * - `"field"`: the body is that top-level field's value; the other fields come from the query.
 * - `""`: every field comes from the query.
 *
 * Query parameter names are field paths by proto or JSON name (`page_size` or `pageSize`, nested
 * `unit_price.currency_code`); a repeated field takes the parameter several times. Path variables
 * are set last and win over the body. The message is read from its proto3 JSON form with
 * protobuf-es (`fromJson`: unknown fields and wrong types are refused). Anything wrong →
 * INVALID_ARGUMENT naming the parameter, with an `errdetails.v1.BadRequest` detail.
 */
export function requestMessage(input: DescMessage, body: string, parts: HttpRequestParts): Message {
  const json = requestJson(input, body, parts);
  try {
    return fromJson(input, json);
  } catch (err) {
    throw invalid("", err instanceof Error ? err.message : String(err));
  }
}

/** The proto3 JSON form of the request message (see `requestMessage`), not checked yet. */
function requestJson(input: DescMessage, body: string, parts: HttpRequestParts): JsonObject {
  let message: JsonObject = {};
  if (body === "*") {
    if (isObject(parts.body)) message = parts.body;
    else if (parts.body !== undefined) throw invalid("", "the request body must be a JSON object");
    const [key] = parts.query.keys();
    if (key !== undefined) {
      throw invalid(key, "this route takes every field in the JSON body, none in the query");
    }
  } else {
    const field = input.fields.find((f) => f.name === body);
    if (field !== undefined && parts.body !== undefined) message[field.jsonName] = parts.body;
    applyQuery(input, body, parts, message);
  }
  for (const [path, text] of parts.pathVariables) {
    const fields = resolveFieldPath(input, path.split("."), false);
    const leaf = fields?.at(-1);
    if (fields === undefined || leaf === undefined) throw invalid(path, "no such field");
    set(message, fields, parse(path, leaf, text));
  }
  return message;
}

function applyQuery(
  input: DescMessage,
  body: string,
  parts: HttpRequestParts,
  message: JsonObject,
): void {
  // By proto path, so that `page_size` and `pageSize` count as one parameter.
  const params = new Map<string, { key: string; fields: DescField[]; values: string[] }>();
  for (const key of new Set(parts.query.keys())) {
    const fields = resolveFieldPath(input, key.split("."), true);
    const leaf = fields?.at(-1);
    if (fields === undefined || leaf === undefined) {
      throw invalid(key, `unknown query parameter; ${input.typeName} has no such field`);
    }
    const path = fields.map((f) => f.name).join(".");
    if (body !== "" && fields[0]?.name === body) throw invalid(key, "belongs in the request body");
    for (const bound of parts.pathVariables.keys()) {
      if (path === bound || path.startsWith(`${bound}.`) || bound.startsWith(`${path}.`)) {
        throw invalid(key, "is set by the URL path");
      }
    }
    if (!isSingularValue(leaf) && !isRepeatedValue(leaf)) throw invalid(key, notAValue(leaf));
    const param = params.get(path) ?? { key, fields, values: [] };
    param.values.push(...parts.query.getAll(key));
    params.set(path, param);
  }
  for (const { key, fields, values } of params.values()) {
    const leaf = fields[fields.length - 1] as DescField;
    if (leaf.fieldKind === "list") {
      set(
        message,
        fields,
        values.map((text) => parse(key, leaf, text)),
      );
    } else if (values.length > 1) {
      throw invalid(key, `given ${values.length} times; it takes one value`);
    } else {
      set(message, fields, parse(key, leaf, values[0] ?? ""));
    }
  }
}

function notAValue(field: DescField): string {
  if (field.fieldKind === "map") return "a map cannot be set from the query; send it in a body";
  if (field.fieldKind === "list") return "a list of messages cannot be set from the query";
  const first = field.fieldKind === "message" ? field.message.fields[0] : undefined;
  return `is a message; set its fields, like "${field.name}.${first?.name ?? "field"}"`;
}

function parse(key: string, field: DescField, text: string): JsonValue {
  try {
    return textToJson(field, text);
  } catch (err) {
    throw invalid(key, err instanceof Error ? err.message : String(err));
  }
}

/**
 * Sets a field by path in a JSON message, creating the messages on the way. A body may name fields
 * by proto or JSON name: the value replaces either.
 */
function set(message: JsonObject, fields: readonly DescField[], value: JsonValue): void {
  let target = message;
  for (const [i, field] of fields.entries()) {
    if (i === fields.length - 1) {
      if (field.name !== field.jsonName) delete target[field.name];
      target[field.jsonName] = value;
      return;
    }
    const key = Object.hasOwn(target, field.name) ? field.name : field.jsonName;
    const child = target[key];
    if (isObject(child)) {
      target = child;
    } else {
      const created: JsonObject = {};
      target[key] = created;
      target = created;
    }
  }
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** INVALID_ARGUMENT for one parameter ("" for the request as a whole), with a BadRequest detail. */
function invalid(key: string, description: string): ConnectError {
  // A query parameter's name is the client's: quoted when it is long.
  const field = key.length > maxQuotedChars ? quote(key) : key;
  const message = field === "" ? description : `${field}: ${description}`;
  return new ConnectError(`invalid request: ${message}`, Code.InvalidArgument, undefined, [
    {
      desc: BadRequestSchema,
      value: create(BadRequestSchema, { fieldViolations: [{ field, description }] }),
    },
  ]);
}
