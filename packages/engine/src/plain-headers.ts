import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http2";

/** What `byName` is until request headers are copied (never read or written: see `own`). */
const none: Map<string, string> = new Map();

/** The source of headers made empty. */
const noFields: IncomingHttpHeaders = Object.freeze({});

// Fetch's header name token and the characters a value may not hold (after trimming).
const nameToken = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const forbiddenInValue = /[\0\r\n]/;
const isHttpWhitespace = (code: number) => code === 9 || code === 10 || code === 13 || code === 32;

/**
 * The Fetch `Headers` of an engine call, over a plain object: what interceptors and handlers
 * read and set behaves as undici's `Headers` does (names case-insensitive, values trimmed,
 * invalid names and values refused with a TypeError, repeated values joined with ", ", iteration
 * in sorted order, `set-cookie` kept apart), without its per-call bookkeeping. The request
 * headers are taken over from the HTTP/2 stream as they are: HTTP/2 has validated and
 * lower-cased them already.
 */
export class PlainHeaders implements Headers {
  /** A `Map`: copied out or looked up, it is faster than a null-prototype object in dictionary mode. */
  private byName: Map<string, string>;
  private cookies: string[] | undefined;
  /**
   * Request headers not yet copied: read where they are until the first change (most calls only
   * read theirs), then copied into `byName`, which is made only then.
   */
  private source: IncomingHttpHeaders | undefined;

  /**
   * @param source the request headers, or fields the answer starts with (shared constants, such
   *   as gRPC's OK status): read where they are until the first change. None: empty.
   */
  constructor(source: IncomingHttpHeaders = noFields) {
    this.source = source;
    this.byName = none;
  }

  /** The request headers of an HTTP/2 stream, pseudo-headers (":path") left out. */
  static fromHttp2(headers: IncomingHttpHeaders): PlainHeaders {
    return new PlainHeaders(headers);
  }

  /** Adds every header to `out`, in no particular order; the `set-cookie` values as one list. */
  copyTo(out: OutgoingHttpHeaders): void {
    if (this.source !== undefined) {
      eachField(this.source, out, setField);
      return;
    }
    this.byName.forEach((value, name) => {
      out[name] = value;
    });
    if (this.cookies !== undefined) out["set-cookie"] = [...this.cookies];
  }

  /** Appends every header to raw header fields, in no particular order; each cookie a field. */
  appendTo(out: string[]): void {
    if (this.source !== undefined) {
      eachField(this.source, out, appendField);
      return;
    }
    this.byName.forEach((value, name) => {
      out.push(name, value);
    });
    if (this.cookies !== undefined)
      for (const cookie of this.cookies) out.push("set-cookie", cookie);
  }

  /**
   * Sets a header the engine itself writes: `name` lower-case and valid, `value` valid and trimmed
   * (constants, as "content-type"), so not checked again on every call.
   */
  setTrusted(name: string, value: string): void {
    this.own();
    this.byName.set(name, value);
  }

  /** Copies the headers still read where they are (see `source`). */
  private own(): void {
    const headers = this.source;
    if (headers === undefined) return;
    this.source = undefined;
    this.byName = new Map<string, string>();
    eachField(headers, this, PlainHeaders.ownField);
  }

  private static ownField(self: PlainHeaders, name: string, value: string | readonly string[]) {
    if (typeof value === "string") self.byName.set(name, value);
    else self.cookies = [...value];
  }

  append(name: string, value: string): void {
    const key = checkedName(name);
    const v = checkedValue(name, value);
    this.own();
    if (key === "set-cookie") {
      this.cookies = [...(this.cookies ?? []), v];
      return;
    }
    const previous = this.byName.get(key);
    this.byName.set(key, previous === undefined ? v : `${previous}, ${v}`);
  }

  set(name: string, value: string): void {
    const key = checkedName(name);
    const v = checkedValue(name, value);
    this.own();
    if (key === "set-cookie") this.cookies = [v];
    else this.byName.set(key, v);
  }

  delete(name: string): void {
    const key = String(name).toLowerCase();
    this.own();
    if (key === "set-cookie") this.cookies = undefined;
    else this.byName.delete(key);
  }

  get(name: string): string | null {
    const key = String(name).toLowerCase();
    if (this.source !== undefined) return fromSource(this.source, key);
    if (key === "set-cookie") return this.cookies === undefined ? null : this.cookies.join(", ");
    return this.byName.get(key) ?? null;
  }

  has(name: string): boolean {
    const key = String(name).toLowerCase();
    if (this.source !== undefined) return fromSource(this.source, key) !== null;
    return key === "set-cookie" ? this.cookies !== undefined : this.byName.has(key);
  }

  getSetCookie(): string[] {
    this.own();
    return this.cookies === undefined ? [] : [...this.cookies];
  }

  forEach(
    callback: (value: string, key: string, parent: Headers) => void,
    thisArg?: unknown,
  ): void {
    for (const [name, value] of this.sorted()) callback.call(thisArg, value, name, this as Headers);
  }

  entries(): Entries {
    return this.sorted()[Symbol.iterator]() as Entries;
  }

  keys(): Names {
    return this.sorted()
      .map(([name]) => name)
      [Symbol.iterator]() as Names;
  }

  values(): Names {
    return this.sorted()
      .map(([, value]) => value)
      [Symbol.iterator]() as Names;
  }

  [Symbol.iterator](): Entries {
    return this.entries();
  }

  /** Every name and value in Fetch's order: names sorted, each `set-cookie` on its own. */
  private sorted(): [string, string][] {
    this.own();
    const out: [string, string][] = [...this.byName];
    for (const cookie of this.cookies ?? []) out.push(["set-cookie", cookie]);
    // Stable: the cookies keep their order. Most calls carry one response header, or none.
    return out.length < 2 ? out : out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
}

/**
 * Adds every header of `headers` to an outgoing HTTP/2 header object: a `PlainHeaders` directly
 * (HTTP/2 fields have no order to keep), any other `Headers` through its iteration. Each
 * `set-cookie` value stays a field of its own.
 */
export function copyHeaders(headers: Headers, out: OutgoingHttpHeaders): void {
  if (headers instanceof PlainHeaders) {
    headers.copyTo(out);
    return;
  }
  headers.forEach((value, name) => {
    if (name !== "set-cookie") out[name] = value;
  });
  const cookies = headers.getSetCookie();
  if (cookies.length > 0) out["set-cookie"] = cookies;
}

/**
 * Appends every header of `headers` to raw header fields (name, value, ...): a `PlainHeaders`
 * directly, any other `Headers` through its iteration (each `set-cookie` value a field of its own).
 */
export function appendHeaders(headers: Headers, out: string[]): string[] {
  if (headers instanceof PlainHeaders) {
    headers.appendTo(out);
    return out;
  }
  headers.forEach((value, name) => {
    if (name !== "set-cookie") out.push(name, value);
  });
  for (const cookie of headers.getSetCookie()) out.push("set-cookie", cookie);
  return out;
}

/**
 * Each field of headers read where they are, as `Headers` has it: pseudo-headers left out, the
 * values of a repeated field joined with ", ", but `set-cookie`'s, which come as a list. One loop
 * for copying, appending and owning; `visit` is one function for every call, not a closure.
 */
function eachField<T>(
  source: IncomingHttpHeaders,
  target: T,
  visit: (target: T, name: string, value: string | readonly string[]) => void,
): void {
  for (const name in source) {
    const value = source[name];
    if (name.charCodeAt(0) === 58 /* ":" */ || value === undefined) continue;
    if (name === "set-cookie") visit(target, name, Array.isArray(value) ? value : [value]);
    else visit(target, name, Array.isArray(value) ? value.join(", ") : value);
  }
}

function setField(out: OutgoingHttpHeaders, name: string, value: string | readonly string[]) {
  out[name] = typeof value === "string" ? value : [...value];
}

function appendField(out: string[], name: string, value: string | readonly string[]) {
  if (typeof value === "string") out.push(name, value);
  else for (const item of value) out.push(name, item);
}

/** A request header as `get` answers it, read off the stream's headers (lower-case `key`). */
function fromSource(headers: IncomingHttpHeaders, key: string): string | null {
  if (key.charCodeAt(0) === 58 /* ":" */) return null;
  const value = headers[key];
  if (value === undefined) return null;
  return Array.isArray(value) ? value.join(", ") : value;
}

type Entries = ReturnType<Headers["entries"]>;
type Names = ReturnType<Headers["keys"]>;

function checkedName(name: string): string {
  const text = String(name);
  if (!nameToken.test(text)) throw new TypeError(`Headers: "${text}" is an invalid header name.`);
  return text.toLowerCase();
}

function checkedValue(name: string, value: string): string {
  let text = String(value);
  if (
    text.length > 0 &&
    (isHttpWhitespace(text.charCodeAt(0)) || isHttpWhitespace(text.charCodeAt(text.length - 1)))
  ) {
    text = text.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
  }
  if (forbiddenInValue.test(text)) {
    throw new TypeError(
      `Headers: "${JSON.stringify(text)}" is an invalid header value for "${name}".`,
    );
  }
  return text;
}
