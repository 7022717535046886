import { createStoreMetrics } from "@keel/observability";
import type { Store } from "@keel/store";
import type { Registry, RegistryContentType } from "prom-client";

/**
 * Registers the pool and query metrics of a pooled store (PostgreSQL; see `createStoreMetrics`
 * of `@keel/observability`), read from `store.stats()` when scraped. Registers nothing for a
 * store without stats (SQLite).
 */
export function registerStoreMetrics(
  registry: Registry<RegistryContentType>,
  store: Pick<Store, "stats">,
): void {
  const stats = store.stats?.bind(store);
  if (stats === undefined) return;
  createStoreMetrics({ registry, stats });
}
