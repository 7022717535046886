import { Counter, Gauge, type Registry, type RegistryContentType } from "prom-client";

/** What a pooled store reports about itself (`Store.stats()` of `@keel/store`). */
export interface StorePoolStats {
  /** Statements sent so far, BEGIN and COMMIT included. */
  queries: number;
  /** Calls so far that found every pooled connection busy. */
  poolExhausted: number;
  /** Connections open now, idle ones included. */
  poolTotal: number;
  /** Open connections no call holds now. */
  poolIdle: number;
  /** Queries waiting for a connection now. */
  poolWaiting: number;
}

/** Options of {@link createStoreMetrics}. */
export interface StoreMetricsOptions {
  registry: Registry<RegistryContentType>;
  /** Read on every scrape. */
  stats: () => StorePoolStats;
}

/**
 * Registers the metrics of a pooled store (PostgreSQL), read from `stats()` when scraped:
 * - `keel_store_queries_total`: statements sent to the database (BEGIN and COMMIT included), so
 *   that `rate(keel_store_queries_total) / rate(grpc_server_handled_total)` is queries per call;
 * - `keel_store_pool_exhausted_total`: calls that found every pooled connection busy and waited;
 * - `keel_store_pool_connections{state="idle"|"busy"}` and `keel_store_pool_waiting` (queries
 *   queued for a connection right now).
 */
export function createStoreMetrics({ registry, stats }: StoreMetricsOptions): void {
  new Counter({
    name: "keel_store_queries_total",
    help: "Statements sent to the database, BEGIN and COMMIT included.",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(stats().queries);
    },
  });
  new Counter({
    name: "keel_store_pool_exhausted_total",
    help: "Store calls that found every pooled database connection busy.",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(stats().poolExhausted);
    },
  });
  new Gauge({
    name: "keel_store_pool_connections",
    help: "Open database connections of the pool, by state.",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      const now = stats();
      this.set({ state: "idle" }, now.poolIdle);
      this.set({ state: "busy" }, now.poolTotal - now.poolIdle);
    },
  });
  new Gauge({
    name: "keel_store_pool_waiting",
    help: "Queries waiting for a database connection.",
    registers: [registry],
    collect() {
      this.set(stats().poolWaiting);
    },
  });
}
