import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Histogram } from "./histogram.ts";

/** The exact quantile of sorted values, by the same rank rule as Histogram.quantile. */
function exact(sorted: number[], q: number): number {
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1] as number;
}

describe("Histogram", () => {
  it("reports percentiles within 1% and min, max and mean exactly", () => {
    // Latency-like values from 10 µs to 10 s: log-normal with a long tail.
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const values = Array.from({ length: 50_000 }, () =>
      Math.min(
        10_000,
        Math.max(
          0.01,
          Math.exp(
            Math.log(2) +
              1.5 * Math.sqrt(-2 * Math.log(random() || 1e-9)) * Math.cos(2 * Math.PI * random()),
          ),
        ),
      ),
    );
    const histogram = new Histogram();
    for (const value of values) histogram.record(value);
    const sorted = [...values].sort((a, b) => a - b);
    for (const q of [0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 1]) {
      const want = exact(sorted, q);
      const got = histogram.quantile(q);
      assert.ok(Math.abs(got - want) <= 0.01 * want, `q=${q}: ${got} vs ${want}`);
    }
    assert.equal(histogram.count, values.length);
    assert.equal(histogram.min, sorted[0]);
    assert.equal(histogram.max, sorted.at(-1));
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    assert.ok(Math.abs(histogram.mean - mean) < 1e-9 * mean);
  });

  it("is exact for one value, and NaN when empty", () => {
    const histogram = new Histogram();
    assert.ok(Number.isNaN(histogram.quantile(0.5)));
    assert.ok(Number.isNaN(histogram.min) && Number.isNaN(histogram.max));
    histogram.record(3.21);
    for (const q of [0.01, 0.5, 1]) assert.equal(histogram.quantile(q), 3.21);
  });

  it("clamps values outside its range and adds histograms", () => {
    const a = new Histogram({ lowest: 1, highest: 100 });
    const b = new Histogram({ lowest: 1, highest: 100 });
    a.record(0.5);
    b.record(1000);
    b.record(50);
    a.add(b);
    assert.equal(a.count, 3);
    assert.equal(a.min, 0.5);
    assert.equal(a.max, 1000);
    assert.ok(Math.abs(a.quantile(0.5) - 50) <= 0.5);
    assert.throws(() => a.add(new Histogram()), RangeError);
  });
});
