import type { Store } from "@keel/store";
import { Counter, Gauge, type Registry, type RegistryContentType } from "prom-client";

/**
 * Registers the metrics of a pooled store (PostgreSQL), read from `store.stats()` when scraped:
 * - `keel_store_queries_total`: statements sent to the database (BEGIN and COMMIT included), so
 *   that `rate(keel_store_queries_total) / rate(grpc_server_handled_total)` is queries per call;
 * - `keel_store_pool_exhausted_total`: calls that found every pooled connection busy and waited;
 * - `keel_store_pool_connections{state="idle"|"busy"}` and `keel_store_pool_waiting` (queries
 *   queued for a connection right now).
 * Registers nothing for a store without stats (SQLite).
 */
export function registerStoreMetrics(
  registry: Registry<RegistryContentType>,
  store: Pick<Store, "stats">,
): void {
  const stats = store.stats?.bind(store);
  if (stats === undefined) return;
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
