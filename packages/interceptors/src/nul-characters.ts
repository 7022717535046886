import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";

/** A text field holding a NUL, by its proto path, and what is wrong with it. */
export interface NulViolation {
  field: string;
  description: string;
}

const inText = "must not contain the NUL character (U+0000)";
const inKeys = "keys must not contain the NUL character (U+0000)";

/**
 * Every string in `message` that holds a NUL character (U+0000), in any field: nested messages,
 * repeated strings, map keys and values, oneofs. No database keeps a NUL in text the same way
 * (PostgreSQL refuses it, SQLite stores it, C clients cut the string there), so no API text may
 * carry one.
 */
export function findNulCharacters(desc: DescMessage, message: unknown): NulViolation[] {
  const out: NulViolation[] = [];
  walk(desc, message as Record<string, unknown>, "", out);
  return out;
}

function walk(
  desc: DescMessage,
  message: Record<string, unknown>,
  prefix: string,
  out: NulViolation[],
): void {
  for (const field of textFields(desc)) {
    let value: unknown;
    if (field.oneof === undefined) value = message[field.localName];
    else {
      const chosen = message[field.oneof.localName] as
        | { case?: string; value?: unknown }
        | undefined;
      if (chosen?.case !== field.localName) continue;
      value = chosen.value;
    }
    if (value === undefined || value === null) continue;
    const path = prefix === "" ? field.name : `${prefix}.${field.name}`;
    switch (field.fieldKind) {
      case "scalar":
      case "message":
        check(field, value, path, out);
        break;
      case "list":
        for (const [i, item] of (value as unknown[]).entries()) {
          check(field, item, `${path}[${i}]`, out);
        }
        break;
      case "map":
        for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
          if (key.includes("\0")) out.push({ field: path, description: inKeys });
          check(field, item, `${path}[${JSON.stringify(key)}]`, out);
        }
        break;
    }
  }
}

/** One value of `field`: a string, or a message to walk (wrapper types arrive as strings). */
function check(field: DescField, value: unknown, path: string, out: NulViolation[]): void {
  if (typeof value === "string") {
    if (value.includes("\0")) out.push({ field: path, description: inText });
    return;
  }
  const desc = "message" in field ? field.message : undefined;
  if (desc !== undefined && typeof value === "object" && value !== null) {
    walk(desc, value as Record<string, unknown>, path, out);
  }
}

/** The fields of each message type that can hold text, directly or deeper; computed once. */
const cache = new WeakMap<DescMessage, readonly DescField[]>();

function textFields(desc: DescMessage): readonly DescField[] {
  let fields = cache.get(desc);
  if (fields === undefined) {
    // A recursive type meets itself while in progress: until then, assume it holds text.
    cache.set(desc, desc.fields);
    fields = desc.fields.filter(mayHoldText);
    cache.set(desc, fields);
  }
  return fields;
}

function mayHoldText(field: DescField): boolean {
  switch (field.fieldKind) {
    case "scalar":
      return field.scalar === ScalarType.STRING;
    case "enum":
      return false;
    case "message":
      return textFields(field.message).length > 0;
    case "list":
      return field.listKind === "scalar"
        ? field.scalar === ScalarType.STRING
        : field.listKind === "message" && textFields(field.message).length > 0;
    case "map":
      return (
        field.mapKey === ScalarType.STRING ||
        (field.mapKind === "scalar" && field.scalar === ScalarType.STRING) ||
        (field.mapKind === "message" && textFields(field.message).length > 0)
      );
  }
}
