import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { median } from "./stats.ts";
import { renderStoreTable, type StoreSample } from "./store-report.ts";
import { counterValue } from "./store-target.ts";

describe("the stores benchmark's figures", () => {
  it("sums a counter's series from /metrics, and says NaN when the server has none", () => {
    const text = [
      "# TYPE keel_store_queries_total counter",
      "keel_store_queries_total 120",
      'keel_store_pool_connections{state="idle"} 3',
      'keel_store_pool_connections{state="busy"} 7',
    ].join("\n");
    assert.equal(counterValue(text, "keel_store_queries_total"), 120);
    assert.equal(counterValue(text, "keel_store_pool_connections"), 10);
    assert.ok(Number.isNaN(counterValue(text, "keel_store_pool_exhausted_total")));
  });

  it("tabulates medians per store, the sum of both CPUs against the first, and unknowns as –", () => {
    const round = (cpu: number, pg: number, queries: number): StoreSample => ({
      sample: {
        rate: 1000,
        completed: 5000,
        p50Ms: 1,
        p99Ms: 2,
        maxMs: 3,
        cpuMicrosPer: cpu,
        peakRssMiB: 100,
        errors: 0,
      },
      firstError: undefined,
      pgCpuMicrosPer: pg,
      queriesPer: queries,
      exhaustedShare: Number.isNaN(queries) ? Number.NaN : 0.25,
    });
    const table = renderStoreTable(
      new Map([
        ["sqlite", [round(100, 0, Number.NaN), round(120, 0, Number.NaN)]],
        ["postgres", [round(150, 70, 1), round(170, 90, 1)]],
      ]),
      (label) => label,
      median,
    );
    const [, , sqlite, postgres] = table.split("\n");
    assert.equal(
      sqlite,
      "| sqlite | 1000 | 110 | 0 | 110 | 1.00 | – | – | 1.00 | 2.00 | 0 | 100, 120 |",
    );
    assert.equal(
      postgres,
      "| postgres | 1000 | 160 | 80 | 240 | 2.18 | 1.00 | 25% | 1.00 | 2.00 | 0 | 150, 170 |",
    );
  });
});
