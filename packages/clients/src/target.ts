/**
 * What an entry of `endpoints` names:
 * - `static`: one endpoint, at a URL such as `http://10.0.0.1:9090` (a host name in it is looked
 *   up by Node.js when the connection is made, one address);
 * - `dns`: every address a DNS name has, as gRPC's `dns:///users.internal:9090` (each A and AAAA
 *   record becomes an endpoint on `port`), looked up again from time to time.
 */
export type Target =
  | { kind: "static"; url: string }
  | {
      kind: "dns";
      /** The entry as given, for messages. */
      target: string;
      host: string;
      port: number;
      /** The DNS server to ask (`dns://10.0.0.2:53/users.internal:9090`); default the system's. */
      server?: string;
    };

/**
 * Parses an entry of `endpoints`: an `http://` or `https://` URL, or a gRPC `dns:` target
 * (`dns:///host:port`, `dns:host:port`, or `dns://server/host:port` to ask that DNS server).
 * Throws a TypeError saying what is wrong.
 */
export function parseTarget(entry: string): Target {
  if (!entry.startsWith("dns:")) {
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw new TypeError(
        `endpoint ${JSON.stringify(entry)} is not a URL: use http://host:port, https://host:port or dns:///host:port`,
      );
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new TypeError(
        `endpoint ${JSON.stringify(entry)}: the scheme must be http, https or dns (dns:///host:port)`,
      );
    }
    return { kind: "static", url: entry };
  }
  let rest = entry.slice("dns:".length);
  let server: string | undefined;
  if (rest.startsWith("//")) {
    const slash = rest.indexOf("/", 2);
    if (slash < 0) throw badDnsTarget(entry);
    server = rest.slice(2, slash) || undefined;
    rest = rest.slice(slash + 1);
  }
  // host:port, [v6]:port; gRPC's default port 443 is no use for keel, so the port is required.
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:/[\]]+)):(\d{1,5})$/.exec(rest);
  const port = Number(match?.[3]);
  const host = match?.[1] ?? match?.[2];
  if (host === undefined || !(port > 0 && port < 65536)) throw badDnsTarget(entry);
  return { kind: "dns", target: entry, host, port, ...(server === undefined ? {} : { server }) };
}

function badDnsTarget(entry: string): TypeError {
  return new TypeError(
    `endpoint ${JSON.stringify(entry)} is not a DNS target: use dns:///host:port (for example dns:///users.internal:9090)`,
  );
}
