import { isIP } from "node:net";
import { createCidrList } from "./cidr.ts";

/** The headers in which proxies pass on the address of the client they serve. */
export type ForwardedHeader = "x-forwarded-for" | "forwarded";

export interface ClientAddressOptions {
  /**
   * Addresses (`10.0.0.7`, `fd00::7`) and CIDR ranges (`10.0.0.0/8`, `fd00::/8`) of the proxies in
   * front of the server. Only a connection from one of them has its forwarding header read; an
   * IPv4 range also covers the IPv4-mapped IPv6 form (`::ffff:10.0.0.7`). Default: none, the
   * connection's own address is the client's.
   */
  trustedProxies?: readonly string[];
  /**
   * The header those proxies write: `x-forwarded-for` (a comma list of addresses; the default) or
   * `forwarded` (RFC 7239, its `for=` parameters). Only this one is read: a client could send the
   * other, and a proxy that does not set it passes it on untouched.
   */
  header?: ForwardedHeader;
}

/** Request headers as Node hands them over: repeated lines joined with ", ", or as a list. */
export type IncomingHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

/**
 * The client's address of a request that came from `peer` (the socket's remote address) with
 * `headers`. Never throws.
 */
export type ClientAddressResolver = (peer: string, headers: IncomingHeaders) => string;

/** Hops read from the right of a forwarding header; proxy chains are a few hops long. */
const maxHops = 16;
/** Characters read from the right of a forwarding header, so that a long one costs no more. */
const maxChars = 2048;
/** RFC 7239's obfuscated identifier, a proxy's stand-in for an address it does not disclose. */
const obfuscated = /^_[A-Za-z0-9._-]{1,63}$/;
const port = /^(?:\d{1,5}|_[A-Za-z0-9._-]{1,63})$/;
/** A parameter name of `forwarded` (RFC 9110's token). */
const token = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Finds the client behind trusted proxies. A request whose connection comes from a trusted proxy
 * is traced back through the forwarding header from the right, the end each proxy appends to:
 * while a hop is a trusted proxy, the one to its left is believed; the first hop that is not
 * trusted is the client. Everything left of it may be forged, and is never read. A connection
 * from anywhere else is its own client, whatever its headers say, so a client that reaches the
 * server directly cannot choose its address.
 *
 * A hop that names no address (`unknown`, or anything malformed) ends the walk at the proxy that
 * wrote it, the nearest address known. An RFC 7239 obfuscated identifier (`_hidden`) is the
 * client as its proxy chose to name it. At most 16 hops and the last 2048 characters of the
 * header are read.
 *
 * With no trusted proxies (the default) the resolver is the identity on `peer`: no work at all.
 *
 * @throws Error naming the first entry of `trustedProxies` that is not an address or range.
 */
export function createClientAddressResolver(
  options: ClientAddressOptions = {},
): ClientAddressResolver {
  const proxies = options.trustedProxies ?? [];
  if (proxies.length === 0) return (peer) => peer;
  const list = createCidrList(proxies, "trusted proxies");
  const trusted = (address: string) => list.has(address);
  const name = options.header ?? "x-forwarded-for";
  const nodeOf = name === "forwarded" ? forwardedFor : (hop: string) => hop.trim();

  return (peer, headers) => {
    if (!trusted(peer)) return peer;
    const raw = headers[name];
    if (raw === undefined) return peer;
    const value = typeof raw === "string" ? raw : raw.join(",");
    let client = peer;
    for (const hop of hopsFromTheRight(value, name === "forwarded")) {
      const node = hop === undefined ? undefined : addressOf(nodeOf(hop));
      if (node === undefined) return client;
      if (!trusted(node)) return node;
      client = node;
    }
    return client;
  };
}

/**
 * The comma-separated elements of `value`, rightmost first: at most `maxHops`, within the last
 * `maxChars` characters; one cut by that limit comes out as undefined, and is the last. With
 * `quoted`, commas inside quoted strings (RFC 9110, with backslash escapes) do not separate.
 */
export function hopsFromTheRight(value: string, quoted: boolean): (string | undefined)[] {
  const hops: (string | undefined)[] = [];
  const stop = Math.max(0, value.length - maxChars);
  let end = value.length;
  let inQuotes = false;
  for (let i = value.length - 1; i >= stop; i--) {
    const c = value.charCodeAt(i);
    if (quoted && c === 0x22 /* " */) {
      // Read backwards, a quote ends a quoted string when outside one, and starts it when no odd
      // run of backslashes escapes it.
      if (!inQuotes) inQuotes = true;
      else {
        let backslashes = 0;
        while (i - 1 - backslashes >= stop && value.charCodeAt(i - 1 - backslashes) === 0x5c) {
          backslashes++;
        }
        if (backslashes % 2 === 0) inQuotes = false;
      }
    } else if (c === 0x2c /* , */ && !inQuotes) {
      hops.push(value.slice(i + 1, end));
      if (hops.length === maxHops) return hops;
      end = i;
    }
  }
  hops.push(stop === 0 && !inQuotes ? value.slice(0, end) : undefined);
  return hops;
}

/** The `for` parameter of one element of a `forwarded` header, unquoted; "" when it has none. */
export function forwardedFor(element: string): string {
  let i = 0;
  const n = element.length;
  while (i < n) {
    const equals = element.indexOf("=", i);
    if (equals === -1) return "";
    const name = element.slice(i, equals).trim().toLowerCase();
    if (!token.test(name)) return "";
    let value = "";
    i = equals + 1;
    while (i < n && (element[i] === " " || element[i] === "\t")) i++;
    if (element[i] === '"') {
      for (i++; i < n && element[i] !== '"'; i++) {
        if (element[i] === "\\") i++;
        value += element[i] ?? "";
      }
      // An unterminated quoted string is malformed.
      if (i >= n) return "";
      i++;
      const semicolon = element.indexOf(";", i);
      if (element.slice(i, semicolon === -1 ? n : semicolon).trim() !== "") return "";
      i = semicolon === -1 ? n : semicolon + 1;
    } else {
      const semicolon = element.indexOf(";", i);
      value = element.slice(i, semicolon === -1 ? n : semicolon).trim();
      i = semicolon === -1 ? n : semicolon + 1;
    }
    if (name === "for") return value;
  }
  return "";
}

/**
 * The address a node names: an IPv4 or IPv6 address, bare or with a port (`1.2.3.4:80`,
 * `[2001:db8::1]:80`), or an obfuscated identifier; undefined for `unknown` and anything else.
 */
export function addressOf(node: string): string | undefined {
  if (isIP(node) !== 0) return node;
  if (node.startsWith("[")) {
    const close = node.indexOf("]");
    const inner = node.slice(1, close);
    const rest = node.slice(close + 1);
    if (close === -1 || isIP(inner) !== 6) return undefined;
    return rest === "" || (rest.startsWith(":") && port.test(rest.slice(1))) ? inner : undefined;
  }
  const colon = node.lastIndexOf(":");
  const host = colon === -1 ? node : node.slice(0, colon);
  if (colon !== -1 && !port.test(node.slice(colon + 1))) return undefined;
  if (isIP(host) === 4 || obfuscated.test(host)) return host;
  return undefined;
}
