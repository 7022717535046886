import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseHeader, parseVariant, renderComparison } from "./compare.ts";
import type { Sample } from "./measure.ts";

describe("compare's variants", () => {
  it("reads a label and a checkout, with node flags after a colon", () => {
    assert.deepEqual(parseVariant("after=."), { label: "after", root: ".", flags: [], env: {} });
    assert.deepEqual(parseVariant("gc=/tmp/base:--single-threaded-gc  --v8-pool-size=1"), {
      label: "gc",
      root: "/tmp/base",
      flags: ["--single-threaded-gc", "--v8-pool-size=1"],
      env: {},
    });
  });

  it("takes KEEL_X=value settings of the variant's server among the flags", () => {
    assert.deepEqual(parseVariant("off=.:KEEL_LOAD_REPORTS=false --single-threaded-gc"), {
      label: "off",
      root: ".",
      flags: ["--single-threaded-gc"],
      env: { KEEL_LOAD_REPORTS: "false" },
    });
  });

  it("refuses what it cannot read, saying what is wrong", () => {
    assert.throws(() => parseVariant("/tmp/base"), /expected label=ROOT/);
    assert.throws(() => parseVariant("bad label=."), /expected label=ROOT/);
    assert.throws(() => parseVariant("a=:--flag"), /the checkout \(ROOT\) is missing/);
    assert.throws(
      () => parseVariant("a=.:single-threaded-gc"),
      /"single-threaded-gc" is not a node flag/,
    );
  });
});

describe("compare's --header", () => {
  it("reads name: value, the name lower-case, and refuses what is no header", () => {
    assert.deepEqual(parseHeader("Grpc-Timeout: 5S"), ["grpc-timeout", "5S"]);
    assert.deepEqual(parseHeader("x-tag:a:b"), ["x-tag", "a:b"]);
    assert.throws(() => parseHeader("grpc-timeout 5S"), /expected name: value/);
    assert.throws(() => parseHeader("bad name: 1"), /expected name: value/);
  });
});

describe("compare's table", () => {
  const round = (rate: number, cpu: number, rss: number, errors = 0): Sample => ({
    rate,
    completed: rate * 8,
    cpuMicrosPer: cpu,
    p50Ms: 10,
    p99Ms: 40,
    maxMs: 25,
    peakRssMiB: rss,
    errors,
  });

  it("gives each variant's medians, its highest RSS, its errors summed and its CPU per round", () => {
    const table = renderComparison(
      new Map([
        ["before", [round(5000, 200, 130), round(7000, 140, 140, 2), round(6000, 160, 120, 1)]],
        ["after", [round(8000, 120, 131), round(8200, 118, 129)]],
      ]),
    );
    const rows = table.split("\n");
    assert.equal(rows.length, 4);
    assert.equal(
      rows[2],
      "| before | 6000 | 160.0 | 10.00 | 40.00 | 2.50 | 140 | 3 | 200, 140, 160 |",
    );
    assert.equal(rows[3], "| after | 8100 | 119.0 | 10.00 | 40.00 | 2.50 | 131 | 0 | 120, 118 |");
  });
});
