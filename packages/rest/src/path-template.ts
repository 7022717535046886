import { RequestPath } from "./request-path.ts";

/**
 * One segment of a path template: a literal, `*` (exactly one path segment) or `**` (zero or more
 * path segments; only last).
 */
export type TemplateSegment =
  | { readonly kind: "literal"; readonly value: string }
  | { readonly kind: "wildcard" }
  | { readonly kind: "deep-wildcard" };

/** A variable of a path template: the request field it sets and the segments it spans. */
export interface TemplateVariable {
  /** The field path as written, `["book", "name"]` for `{book.name=shelves/*}`. */
  readonly fieldPath: readonly string[];
  /** The index of its first segment in the template's `segments`. */
  readonly start: number;
  /** The index after its last segment. */
  readonly end: number;
}

/** A parsed `google.api.http` path template, such as `/v1/{name=shelves/*}/books:search`. */
export interface PathTemplate {
  /** The template as written. */
  readonly source: string;
  /** Every segment, those inside variables included, in order. */
  readonly segments: readonly TemplateSegment[];
  readonly variables: readonly TemplateVariable[];
  /** The custom verb after the last `:`, such as `cancel`; undefined without one. */
  readonly verb: string | undefined;
}

const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Parses a path template per the grammar of `google/api/http.proto`:
 *
 *     Template = "/" Segments [ Verb ] ;
 *     Segments = Segment { "/" Segment } ;
 *     Segment  = "*" | "**" | LITERAL | Variable ;
 *     Variable = "{" FieldPath [ "=" Segments ] "}" ;
 *     FieldPath = IDENT { "." IDENT } ;
 *     Verb     = ":" LITERAL ;
 *
 * `{field}` is short for `{field=*}`. `**` may only be the last segment. Throws an Error naming the
 * position of the first problem.
 */
export function parsePathTemplate(source: string): PathTemplate {
  let pos = 0;
  const segments: TemplateSegment[] = [];
  const variables: TemplateVariable[] = [];
  const fail = (problem: string): never => {
    throw new Error(`invalid path template "${source}" at ${pos}: ${problem}`);
  };

  const literal = (): string => {
    const start = pos;
    while (pos < source.length && !"/{}*:".includes(source.charAt(pos))) pos++;
    if (pos === start) fail("expected a segment");
    return source.slice(start, pos);
  };
  const segment = (inVariable: boolean): void => {
    if (source.startsWith("**", pos)) {
      pos += 2;
      segments.push({ kind: "deep-wildcard" });
    } else if (source.startsWith("*", pos)) {
      pos += 1;
      segments.push({ kind: "wildcard" });
    } else if (source.startsWith("{", pos)) {
      if (inVariable) fail("variables cannot nest");
      variable();
    } else {
      segments.push({ kind: "literal", value: literal() });
    }
  };
  const segmentList = (inVariable: boolean): void => {
    segment(inVariable);
    while (source.startsWith("/", pos)) {
      pos++;
      segment(inVariable);
    }
  };
  const variable = (): void => {
    pos++; // "{"
    const end = source.slice(pos).search(/[=}]/);
    if (end < 0) fail("unclosed variable");
    const fieldPath = source.slice(pos, pos + end).split(".");
    if (!fieldPath.every((name) => identifier.test(name))) fail("expected a field path");
    const dotted = fieldPath.join(".");
    if (variables.some((v) => v.fieldPath.join(".") === dotted)) fail(`${dotted} appears twice`);
    pos += end;
    const start = segments.length;
    if (source.startsWith("=", pos)) {
      pos++;
      segmentList(true);
    } else {
      segments.push({ kind: "wildcard" });
    }
    if (!source.startsWith("}", pos)) fail('expected "}"');
    pos++;
    variables.push({ fieldPath, start, end: segments.length });
  };

  if (!source.startsWith("/")) fail('a template starts with "/"');
  pos = 1;
  segmentList(false);
  let verb: string | undefined;
  if (source.startsWith(":", pos)) {
    pos++;
    verb = literal();
  }
  if (pos !== source.length) fail("unexpected character");
  const deep = segments.findIndex((s) => s.kind === "deep-wildcard");
  if (deep >= 0 && deep !== segments.length - 1) {
    pos = source.indexOf("**");
    fail('"**" must be the last segment');
  }
  return { source, segments, variables, verb };
}

/**
 * Matches a request path, still percent-encoded as it came (without the query), against a
 * template; a `RequestPath` when the same path is matched against many. Returns the value of each variable by dotted field path (`"book.name"`), or undefined
 * when the path does not match. Values are percent-decoded; those of variables spanning several
 * segments keep `%2F` encoded, so that a decoded `/` cannot be told from a separator (as
 * `google.api.http` specifies).
 */
export function matchPathTemplate(
  template: PathTemplate,
  path: string | RequestPath,
): ReadonlyMap<string, string> | undefined {
  let request = typeof path === "string" ? new RequestPath(path) : path;
  if (template.verb !== undefined) {
    const trimmed = request.withoutVerb(template.verb);
    if (trimmed === undefined) return undefined;
    request = trimmed;
  }
  const parts = request.parts;
  if (parts === undefined) return undefined;
  // Where each template segment lies in `parts`: [from, to).
  const spans: [number, number][] = [];
  let next = 0;
  for (const segment of template.segments) {
    if (segment.kind === "deep-wildcard") {
      spans.push([next, parts.length]);
      next = parts.length;
      continue;
    }
    const part = parts[next];
    if (part === undefined || part === "") return undefined;
    if (segment.kind === "literal" && request.decodedPart(next) !== segment.value) return undefined;
    spans.push([next, next + 1]);
    next++;
  }
  if (next !== parts.length) return undefined;

  const values = new Map<string, string>();
  for (const variable of template.variables) {
    const from = spans[variable.start]?.[0] ?? 0;
    const to = spans[variable.end - 1]?.[1] ?? from;
    const multi =
      variable.end - variable.start > 1 ||
      template.segments[variable.start]?.kind === "deep-wildcard";
    const value = multi ? decode(parts.slice(from, to).join("/"), true) : request.decodedPart(from);
    if (value === undefined) return undefined;
    values.set(variable.fieldPath.join("."), value);
  }
  return values;
}

/**
 * Orders templates from the most to the least specific, so that the first match wins: segment by
 * segment a literal beats `*`, which beats `**`; then a template with a verb beats one without.
 */
export function compareTemplates(a: PathTemplate, b: PathTemplate): number {
  const rank = { literal: 0, wildcard: 1, "deep-wildcard": 2 } as const;
  const length = Math.min(a.segments.length, b.segments.length);
  for (let i = 0; i < length; i++) {
    const diff = rank[a.segments[i]?.kind ?? "literal"] - rank[b.segments[i]?.kind ?? "literal"];
    if (diff !== 0) return diff;
  }
  if ((a.verb === undefined) !== (b.verb === undefined)) return a.verb === undefined ? 1 : -1;
  return b.segments.length - a.segments.length;
}

/**
 * A template in OpenAPI form, each variable as `{field.path}`, the verb kept:
 * `/v1/{name=shelves/*}:move` → `/v1/{name}:move`.
 */
export function openApiPath(template: PathTemplate): string {
  let path = "";
  for (let i = 0; i < template.segments.length; ) {
    const variable = template.variables.find((v) => v.start === i);
    if (variable !== undefined) {
      path += `/{${variable.fieldPath.join(".")}}`;
      i = variable.end;
    } else {
      path += `/${templateText(template, i, i + 1)}`;
      i++;
    }
  }
  return template.verb === undefined ? path : `${path}:${template.verb}`;
}

/** The segments `start` to `end` of a template as written (`shelves/*`), variables aside. */
export function templateText(template: PathTemplate, start: number, end: number): string {
  return template.segments
    .slice(start, end)
    .map((s) => (s.kind === "literal" ? s.value : s.kind === "wildcard" ? "*" : "**"))
    .join("/");
}

/** Percent-decodes, keeping `%2F` as is in multi-segment values; undefined when malformed. */
function decode(raw: string, keepSlashes: boolean): string | undefined {
  try {
    if (!keepSlashes) return decodeURIComponent(raw);
    return raw
      .split(/%2F/i)
      .map((piece) => decodeURIComponent(piece))
      .join("%2F");
  } catch {
    return undefined;
  }
}
