import { create, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { BadRequestSchema } from "@keel/gen/errdetails/v1/errdetails_pb";
import type { z } from "zod";
import { bounded, quote } from "./bounded-text.ts";
import { findNulCharacters } from "./nul-characters.ts";
import { tap } from "./streams.ts";

/** The most field violations one error reports; the message says how many more there were. */
const maxViolations = 20;
/** The most bytes of one violation's field path or description. */
const maxViolationBytes = 256;

export interface ValidationOptions {
  /** A zod schema for each request message type, by type name ("user.v1.CreateUserRequest"). */
  schemas: Readonly<Record<string, z.ZodType>>;
  /**
   * Client-streaming methods whose handler validates each message itself, with
   * `validateMessage`, to report failures one by one instead of ending the call (partial success,
   * like BatchUpdateUsers). By procedure ("user.v1.UserService/BatchUpdateUsers"). Default none.
   */
  itemized?: readonly string[];
}

/**
 * Checks every request message against its zod schema before the handler sees it, and every text
 * in it, of any message type, for the NUL character (refused in any string field, repeated string,
 * map key or value). A bad message → INVALID_ARGUMENT naming each bad field by its proto path, in
 * the message (`invalid request: username: …; items[2].quantity: …`) and as an
 * `errdetails.v1.BadRequest` detail. Streams are checked message by message; a message type
 * without a schema is checked for NUL characters only. At most 20 violations are reported, each
 * bounded, so that a request with many bad values does not make an error of unbounded size.
 */
export function createValidationInterceptor(options: ValidationOptions): Interceptor {
  const itemized = new Set(options.itemized ?? []);
  // Not an async function: a valid message goes straight on, without a promise of its own.
  return (next) => (req) => {
    const schema = options.schemas[req.method.input.typeName];
    if (!req.stream) {
      try {
        validateMessage(req.method.input, schema, req.message);
      } catch (err) {
        return Promise.reject(err);
      }
      return next(req);
    }
    if (itemized.has(`${req.method.parent.typeName}/${req.method.name}`)) return next(req);
    const input = req.method.input;
    return next({ ...req, message: tap(req.message, (m) => validateMessage(input, schema, m)) });
  };
}

/**
 * Throws INVALID_ARGUMENT, with a BadRequest detail, when `message` holds a NUL character in any
 * text or does not satisfy `schema` (when there is one).
 */
export function validateMessage(
  desc: DescMessage,
  schema: z.ZodType | undefined,
  message: unknown,
): void {
  const all = findNulCharacters(desc, message);
  const result = schema?.safeParse(message);
  if (result !== undefined && !result.success) {
    for (const issue of result.error.issues) {
      all.push({ field: protoPath(desc, issue.path), description: issue.message });
    }
  }
  if (all.length === 0) return;
  const violations = all.slice(0, maxViolations).map((v) => ({
    field: bounded(v.field, maxViolationBytes),
    description: bounded(v.description, maxViolationBytes),
  }));
  const more = all.length > maxViolations ? `; and ${all.length - maxViolations} more` : "";
  throw new ConnectError(
    `invalid request: ${violations.map((v) => (v.field === "" ? v.description : `${v.field}: ${v.description}`)).join("; ")}${more}`,
    Code.InvalidArgument,
    undefined,
    [{ desc: BadRequestSchema, value: create(BadRequestSchema, { fieldViolations: violations }) }],
  );
}

/** A zod path over a message's local names as a proto path: `items[2].unit_price.currency_code`. */
function protoPath(desc: DescMessage, path: readonly PropertyKey[]): string {
  let out = "";
  let current: DescMessage | undefined = desc;
  let mapKeyNext = false;
  for (const segment of path) {
    if (typeof segment === "number") {
      out += `[${segment}]`;
      continue;
    }
    if (mapKeyNext) {
      out += `[${quote(segment)}]`;
      mapKeyNext = false;
      continue;
    }
    const field: DescField | undefined = current?.fields.find((f) => f.localName === segment);
    out += (out === "" ? "" : ".") + (field?.name ?? String(segment));
    current = undefined;
    if (field?.fieldKind === "message") current = field.message;
    else if (field?.fieldKind === "list" && field.listKind === "message") current = field.message;
    else if (field?.fieldKind === "map") {
      mapKeyNext = true;
      if (field.mapKind === "message") current = field.message;
    }
  }
  return out;
}
