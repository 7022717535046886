import * as dns from "node:dns";
import { isIP } from "node:net";

/** What name resolution needs of a DNS client: node:dns's `promises.Resolver` has it. */
export interface DnsLookup {
  /** The name's A records (IPv4 addresses). */
  resolve4(host: string): Promise<string[]>;
  /** The name's AAAA records (IPv6 addresses). */
  resolve6(host: string): Promise<string[]>;
}

/** How `dns:` targets are resolved. */
export interface NameResolutionOptions {
  /**
   * How often each name is resolved again, in ms, so that instances added to or removed from the
   * name (a scaled headless Kubernetes service) reach the balancer. Default 30000.
   */
  refreshIntervalMs?: number;
  /**
   * The shortest time between two resolutions of a name, in ms: a failed connection asks for a
   * new resolution at once, at most this often. Default 30000, as grpc-go's DNS resolver.
   */
  minIntervalMs?: number;
  /**
   * The DNS client, for example a `new dns.promises.Resolver()` given `setServers([...])`.
   * Default: node:dns with the system's DNS servers, and the hosts file (getaddrinfo) for a name
   * they do not know or when they cannot be reached (`localhost`, /etc/hosts entries).
   */
  resolver?: DnsLookup;
}

/** The addresses of one name, kept up to date. */
export interface NameResolver {
  /**
   * Resolves the name again soon: now, unless it was resolved less than `minIntervalMs` ago,
   * then once that has passed.
   */
  resolveNow(): void;
  /** Stops resolving. */
  close(): void;
}

export interface DnsResolverOptions extends NameResolutionOptions {
  host: string;
  /** Called with the name's addresses, in the DNS's order, each time their set changes. */
  onAddresses(addresses: string[]): void;
  /** Called when a resolution fails; the last addresses stay in use. */
  onError(message: string): void;
}

/** DNS error codes that mean the name has no records of the kind asked for, not a failure. */
const noRecords = new Set<string>([dns.NOTFOUND, dns.NODATA]);

/** Delays before the retries of a failed resolution: 1 s, growing 1.6× up to the refresh interval. */
const firstRetryMs = 1000;

/**
 * Resolves `host` now and then again every `refreshIntervalMs`, and on `resolveNow()` (at most
 * once per `minIntervalMs`), as grpc-go's DNS resolver: A and AAAA records, every address one
 * endpoint. A failed resolution (or one with no address) is retried with backoff, and the
 * addresses known before stay in use meanwhile. An IP address is its own only address. Timers
 * never keep the process alive.
 */
export function createDnsResolver(options: DnsResolverOptions): NameResolver {
  const refreshMs = options.refreshIntervalMs ?? 30_000;
  const minMs = options.minIntervalMs ?? 30_000;
  const resolver = options.resolver;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let timerAt = Number.POSITIVE_INFINITY;
  let lastStart = Number.NEGATIVE_INFINITY;
  let running = false;
  let failures = 0;
  let known = "";

  if (isIP(options.host) !== 0) {
    queueMicrotask(() => options.onAddresses([options.host]));
    return { resolveNow() {}, close() {} };
  }

  const schedule = (delayMs: number) => {
    const at = Date.now() + delayMs;
    if (closed || at >= timerAt) return;
    clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(run, delayMs);
    timer.unref();
  };

  const run = async () => {
    clearTimeout(timer);
    timerAt = Number.POSITIVE_INFINITY;
    if (closed || running) return;
    running = true;
    lastStart = Date.now();
    try {
      const addresses = await lookup(options.host, resolver);
      if (closed) return;
      failures = 0;
      // DNS servers rotate the order of records: only a different set is a change.
      const key = [...addresses].sort().join(" ");
      if (key !== known) {
        known = key;
        options.onAddresses(addresses);
      }
      schedule(refreshMs);
    } catch (err) {
      if (closed) return;
      options.onError(`resolving ${options.host}: ${err instanceof Error ? err.message : err}`);
      schedule(Math.min(refreshMs, firstRetryMs * 1.6 ** failures++));
    } finally {
      running = false;
    }
  };
  void run();

  return {
    resolveNow() {
      schedule(Math.max(0, lastStart + minMs - Date.now()));
    },
    close() {
      closed = true;
      clearTimeout(timer);
    },
  };
}

/** The name's A and AAAA records; throws when it has none or the DNS cannot be asked. */
async function lookup(host: string, resolver: DnsLookup | undefined): Promise<string[]> {
  const client = resolver ?? dns.promises;
  const [v4, v6] = await Promise.allSettled([client.resolve4(host), client.resolve6(host)]);
  const addresses = [
    ...(v4.status === "fulfilled" ? v4.value : []),
    ...(v6.status === "fulfilled" ? v6.value : []),
  ];
  if (addresses.length > 0) return [...new Set(addresses)];
  // A name the DNS servers do not know (or servers that cannot be reached) may be in the hosts
  // file, as getaddrinfo finds it; only when the servers were not chosen by the caller.
  if (resolver === undefined) {
    const found = await dns.promises.lookup(host, { all: true }).catch(() => []);
    if (found.length > 0) return [...new Set(found.map((a) => a.address))];
  }
  const errors = [v4, v6].flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
  const failure = errors.find((e) => !noRecords.has((e as { code?: string }).code ?? ""));
  if (failure !== undefined) throw failure;
  throw new Error(`the DNS has no A or AAAA record of ${host}`);
}
