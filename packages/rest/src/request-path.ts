/**
 * A request path (still percent-encoded, without the query) split once into its segments, so
 * that matching it against every route's template splits and decodes it once, not per template.
 */
export class RequestPath {
  /** The segments after the leading "/"; undefined when the path does not start with one. */
  readonly parts: readonly string[] | undefined;
  private readonly decoded: (string | null | undefined)[] = [];
  private withoutVerbs: Map<string, RequestPath | null> | undefined;

  /** The path as it came. */
  readonly path: string;

  constructor(path: string) {
    this.path = path;
    this.parts = path.startsWith("/") ? path.slice(1).split("/") : undefined;
  }

  /** Segment `i` percent-decoded; undefined when it is malformed. Decoded once. */
  decodedPart(i: number): string | undefined {
    let value = this.decoded[i];
    if (value === undefined) {
      try {
        value = decodeURIComponent(this.parts?.[i] ?? "");
      } catch {
        value = null;
      }
      this.decoded[i] = value;
    }
    return value ?? undefined;
  }

  /** The path without its custom verb (`:cancel`), or undefined when it does not end with it. */
  withoutVerb(verb: string): RequestPath | undefined {
    this.withoutVerbs ??= new Map();
    let path = this.withoutVerbs.get(verb);
    if (path === undefined) {
      const suffix = `:${verb}`;
      path = this.path.endsWith(suffix)
        ? new RequestPath(this.path.slice(0, -suffix.length))
        : null;
      this.withoutVerbs.set(verb, path);
    }
    return path ?? undefined;
  }
}
