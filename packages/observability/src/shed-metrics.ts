import { Counter, Gauge, type Registry, type RegistryContentType } from "prom-client";

/** Options for `createShedMetrics`. */
export interface ShedMetricsOptions {
  /** Where the metrics are registered, for example the server's. */
  registry: Registry<RegistryContentType>;
  /** The reasons calls can be shed for: each series exists at zero from the start. Default none. */
  reasons?: readonly string[];
  /** The share of new calls being refused now, 0 to 1, read when scraped. Default: always 0. */
  probability?: () => number;
}

/** Counts calls refused by load shedding. */
export interface ShedMetrics {
  /** Counts one call refused for `reason`. */
  shed(reason: string): void;
}

/**
 * `keel_server_shed_total{reason}`, calls refused before any work because the process was
 * overloaded (they never reach the interceptors, so `grpc_server_handled_total` does not count
 * them), and `keel_server_shed_ratio`, the share of new calls being refused now.
 */
export function createShedMetrics(options: ShedMetricsOptions): ShedMetrics {
  const counter = new Counter({
    name: "keel_server_shed_total",
    help: "Calls refused by load shedding before any work, by reason.",
    labelNames: ["reason"],
    registers: [options.registry],
  });
  // A series per reason, looked up once: a refusal costs a map lookup and an addition.
  const series = new Map<string, ReturnType<typeof counter.labels>>();
  const seriesOf = (reason: string) => {
    let one = series.get(reason);
    if (one === undefined) {
      one = counter.labels(reason);
      series.set(reason, one);
    }
    return one;
  };
  for (const reason of options.reasons ?? []) seriesOf(reason).inc(0);
  const probability = options.probability ?? (() => 0);
  new Gauge({
    name: "keel_server_shed_ratio",
    help: "Share of new calls being refused by load shedding now, 0 to 1.",
    registers: [options.registry],
    // In cluster mode the primary merges its workers' metrics: the share of the worker shedding
    // most, not a sum of shares.
    aggregator: "max",
    collect() {
      this.set(probability());
    },
  });
  return { shed: (reason) => seriesOf(reason).inc() };
}
