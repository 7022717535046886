import { create, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { BadRequestSchema } from "@keel/gen/errdetails/v1/errdetails_pb";
import type { z } from "zod";
import { bounded, quote } from "./bounded-text.ts";
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
 * Checks every request message against its zod schema before the handler sees it. A bad message
 * → INVALID_ARGUMENT naming each bad field by its proto path, in the message
 * (`invalid request: username: …; items[2].quantity: …`) and as an `errdetails.v1.BadRequest`
 * detail. Streams are checked message by message; a message type without a schema passes. At
 * most 20 violations are reported, each bounded, so that a request with many bad values does not
 * make an error of unbounded size.
 */
export function createValidationInterceptor(options: ValidationOptions): Interceptor {
  const itemized = new Set(options.itemized ?? []);
  // Not an async function: a valid message goes straight on, without a promise of its own.
  return (next) => (req) => {
    const schema = options.schemas[req.method.input.typeName];
    if (schema === undefined) return next(req);
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

/** Throws INVALID_ARGUMENT, with a BadRequest detail, when `message` does not satisfy `schema`. */
export function validateMessage(desc: DescMessage, schema: z.ZodType, message: unknown): void {
  const result = schema.safeParse(message);
  if (result.success) return;
  const { issues } = result.error;
  const violations = issues.slice(0, maxViolations).map((issue) => ({
    field: bounded(protoPath(desc, issue.path), maxViolationBytes),
    description: bounded(issue.message, maxViolationBytes),
  }));
  const more = issues.length > maxViolations ? `; and ${issues.length - maxViolations} more` : "";
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
