import { promises as dns } from "node:dns";
import { isIP } from "node:net";
import type { BalancedEndpoint, BalancingTransport } from "./balancer.ts";
import {
  createDnsResolver,
  type NameResolutionOptions,
  type NameResolver,
} from "./dns-resolver.ts";
import type { Target } from "./target.ts";

export interface ResolvedEndpointsOptions {
  targets: Target[];
  /** How `dns:` targets are resolved again. */
  resolution?: NameResolutionOptions;
  /** Whether resolved addresses are called over TLS (https) rather than plaintext (http). */
  tls: boolean;
  /**
   * Makes the endpoint at `url`. `servername` is the name a resolved address's TLS certificate
   * must carry; `onConnectionFailed` asks for the name to be resolved again.
   */
  make(
    url: string,
    resolved?: { servername: string; onConnectionFailed: () => void },
  ): BalancedEndpoint;
  /** Where the endpoints go, each time they change. */
  balancer: BalancingTransport;
}

/** One `dns:` target, with the endpoints of its addresses now. */
interface Resolved {
  target: Extract<Target, { kind: "dns" }>;
  endpoints: Map<string, BalancedEndpoint>;
  resolver?: NameResolver;
}

/**
 * Keeps the balancer's endpoints those of `targets`: a URL is one endpoint for good; a `dns:`
 * target is one endpoint per address of its name, resolved now, again every refresh interval and
 * when one of its connections fails, so that instances added to the name join the rotation and
 * those removed leave it (their calls in flight finish first). An endpoint that stays at the same
 * address keeps its connection, health and circuit breaker across resolutions.
 */
export function resolveEndpoints(options: ResolvedEndpointsOptions): { close(): void } {
  const statics = options.targets.flatMap((t) =>
    t.kind === "static" ? [options.make(t.url)] : [],
  );
  const resolved: Resolved[] = options.targets.flatMap((target) =>
    target.kind === "dns" ? [{ target, endpoints: new Map() }] : [],
  );
  const publish = () =>
    options.balancer.update([...statics, ...resolved.flatMap((r) => [...r.endpoints.values()])]);
  const scheme = options.tls ? "https" : "http";
  if (statics.length > 0) publish();

  for (const entry of resolved) {
    const { target } = entry;
    const onConnectionFailed = () => entry.resolver?.resolveNow();
    entry.resolver = createDnsResolver({
      host: target.host,
      ...options.resolution,
      ...(target.server === undefined ? {} : { resolver: dnsServer(target) }),
      onAddresses(addresses) {
        const next = new Map<string, BalancedEndpoint>();
        for (const address of addresses) {
          const host = isIP(address) === 6 ? `[${address}]` : address;
          const url = `${scheme}://${host}:${target.port}`;
          next.set(
            url,
            entry.endpoints.get(url) ??
              options.make(url, { servername: target.host, onConnectionFailed }),
          );
        }
        entry.endpoints = next;
        publish();
      },
      onError(message) {
        if (statics.length > 0 || resolved.some((r) => r.endpoints.size > 0)) return;
        options.balancer.resolutionFailed(`${target.target}: ${message}`);
      },
    });
  }
  return {
    close() {
      for (const entry of resolved) entry.resolver?.close();
    },
  };
}

/** A DNS client asking the target's server (`dns://10.0.0.2:5353/…`) only. */
function dnsServer(target: Resolved["target"]): InstanceType<typeof dns.Resolver> {
  const resolver = new dns.Resolver();
  try {
    resolver.setServers([target.server ?? ""]);
  } catch {
    throw new TypeError(
      `endpoint ${JSON.stringify(target.target)}: the DNS server must be an IP address, with an optional port (dns://10.0.0.2:53/host:port)`,
    );
  }
  return resolver;
}
