import type { z } from "zod";
import { nearestName } from "./nearest-name.ts";

/** Settings whose values never appear in a message: they are, or may contain, secrets. */
const secretKeys = new Set([
  "auth.jwtSecret",
  "auth.acceptedJwtSecrets",
  "auth.apiKeySecret",
  "database.url",
]);

/** The longest value quoted in a message; longer ones are cut (a message is one line). */
const maxQuoted = 80;

/** Where a problem's setting came from, and what it says. */
export interface ProblemSource {
  /** The dotted key of each setting set from the environment, and its variable. */
  fromEnv: ReadonlyMap<string, string>;
  /** The settings as written (file and environment merged), before validation. */
  raw: unknown;
  /** Every dotted key a file may hold, for suggestions. */
  knownKeys: readonly string[];
}

/**
 * One line per problem, naming the variable (or the file's key), quoting the value (unless it
 * may be a secret) and saying what it must be: `KEEL_PORT: "abc" is not a port number (0 to
 * 65535)`, `unknown setting prot: did you mean port?`.
 */
export function describeIssue(issue: z.core.$ZodIssue, source: ProblemSource): string {
  if (issue.code === "unrecognized_keys") {
    const at = issue.path.join(".");
    return issue.keys
      .map((key) => {
        const full = at === "" ? key : `${at}.${key}`;
        const siblings = source.knownKeys
          .filter((k) => k.startsWith(at === "" ? "" : `${at}.`))
          .map((k) => (at === "" ? k : k.slice(at.length + 1)).split(".")[0] as string);
        return unknownName(full, key, new Set(siblings), at);
      })
      .join("; ");
  }
  const key = issue.path.join(".");
  // An item of a list names the list's variable, and quotes the item.
  const list = typeof issue.path.at(-1) === "number" ? issue.path.slice(0, -1).join(".") : key;
  const name = source.fromEnv.get(key) ?? source.fromEnv.get(list) ?? key;
  // A key of a mapping of names (rateLimits.methods, ipAccess.methods) that is no such name.
  if (issue.code === "invalid_key") {
    const why = issue.issues[0]?.message ?? "is not valid";
    return `${name}: the key ${quote(String(issue.path.at(-1)))} ${why}`;
  }
  // Custom checks (addresses, CIDR ranges) word their whole message, value included.
  if (issue.code === "custom") return `${name}: ${issue.message}`;
  const value = valueAt(source.raw, issue.path, source.fromEnv.has(list) ? issue.input : undefined);
  if (value === undefined) return `${name}: is required`;
  const shown = secretKeys.has(key) || secretKeys.has(list) ? "the value" : quote(value);
  return `${name}: ${shown} ${phrase(issue)}`;
}

/** `unknown setting NAME`, with the nearest known name when one is close enough. */
export function unknownName(
  name: string,
  last: string,
  known: ReadonlySet<string>,
  at = "",
): string {
  const nearest = nearestName(last, known);
  if (nearest === undefined) return `unknown setting ${name}`;
  return `unknown setting ${name}: did you mean ${at === "" ? nearest : `${at}.${nearest}`}?`;
}

/** What the value must be, worded after it: "is not a number", "must be at least 1". */
function phrase(issue: z.core.$ZodIssue): string {
  if (/^(is|must) /.test(issue.message)) return issue.message;
  switch (issue.code) {
    case "invalid_type":
      if (issue.expected === "number") return "is not a number";
      if (issue.expected === "int") return "is not a whole number";
      if (issue.expected === "object") return "must be a mapping";
      if (issue.expected === "array") return "must be a list";
      return `must be a ${issue.expected}`;
    case "too_small":
      return bound("at least", "more than", issue.minimum, issue.inclusive, issue.origin);
    case "too_big":
      return bound("at most", "less than", issue.maximum, issue.inclusive, issue.origin);
    case "invalid_value":
      return `must be one of ${issue.values.map(String).join(", ")}`;
    case "invalid_format":
      return issue.format === "url" ? "is not an http:// or https:// URL" : issue.message;
    default:
      return issue.message;
  }
}

function bound(
  inclusive: string,
  exclusive: string,
  limit: number | bigint,
  isInclusive: boolean | undefined,
  origin: string,
): string {
  const unit = origin === "string" ? " characters" : origin === "array" ? " items" : "";
  return `must be ${isInclusive === false ? exclusive : inclusive} ${limit}${unit}`;
}

/** The value at `path` as written; `fallback` where the walk ends early (an item of a list). */
function valueAt(raw: unknown, path: readonly PropertyKey[], fallback: unknown): unknown {
  let node = raw;
  for (const step of path) {
    if (typeof node !== "object" || node === null) return fallback;
    node = (node as Record<PropertyKey, unknown>)[step];
  }
  return node;
}

function quote(value: unknown): string {
  const text = typeof value === "string" ? JSON.stringify(value) : String(JSON.stringify(value));
  return text.length > maxQuoted ? `${text.slice(0, maxQuoted - 1)}…` : text;
}
