import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeBinaryHeader } from "@connectrpc/connect";
import { encodeOrcaLoadReport } from "@keel/interceptors";
import { loadReportTrailer } from "./load-report.ts";
import { createWeightedPicker, EndpointWeight, weightSettings } from "./weighted-round-robin.ts";

const settings = weightSettings({
  blackoutPeriodMs: 100,
  weightExpirationPeriodMs: 1000,
  weightUpdatePeriodMs: 100,
  errorUtilizationPenalty: 2,
});

/** Trailers carrying an ORCA report of these values. */
function trailers(report: {
  cpu?: number;
  application?: number;
  qps?: number;
  eps?: number;
}): Headers {
  const bytes = encodeOrcaLoadReport({
    cpuUtilization: report.cpu ?? 0,
    memUtilization: 0.5,
    rpsFractional: report.qps ?? 0,
    eps: report.eps ?? 0,
    applicationUtilization: report.application ?? 0,
    namedMetrics: { in_flight: 2 },
  });
  return new Headers({ [loadReportTrailer]: encodeBinaryHeader(bytes) });
}

describe("EndpointWeight", () => {
  it("is qps / utilisation, preferring the application's, with the error penalty", () => {
    const w = new EndpointWeight(settings);
    w.report(trailers({ cpu: 0.9, application: 0.5, qps: 100 }), 0);
    assert.equal(w.weight(100), 200);
    const cpuOnly = new EndpointWeight(settings);
    cpuOnly.report(trailers({ cpu: 0.25, qps: 100 }), 0);
    assert.equal(cpuOnly.weight(100), 400);
    // 10 errors per 100 calls with a penalty of 2: utilisation 0.5 + 0.2.
    const failing = new EndpointWeight(settings);
    failing.report(trailers({ application: 0.5, qps: 100, eps: 10 }), 0);
    assert.ok(Math.abs(failing.weight(100) - 100 / 0.7) < 1e-9);
  });

  it("has no weight before its blackout period has passed, nor once its reports stop", () => {
    const w = new EndpointWeight(settings);
    assert.equal(w.weight(0), 0, "no report yet");
    w.report(trailers({ application: 0.5, qps: 10 }), 1000);
    assert.equal(w.weight(1050), 0, "in the blackout period");
    assert.equal(w.weight(1100), 20);
    // The same report again (the server has not measured since) keeps it fresh.
    w.report(trailers({ application: 0.5, qps: 10 }), 1900);
    assert.equal(w.weight(2800), 20);
    assert.equal(w.weight(2900), 0, "expired: no report for 1000 ms");
    // A new report starts a new blackout period.
    w.report(trailers({ application: 0.25, qps: 10 }), 3000);
    assert.equal(w.weight(3050), 0);
    assert.equal(w.weight(3100), 40);
  });

  it("ignores reports without utilisation or qps, and trailers that are not reports", () => {
    const w = new EndpointWeight(settings);
    w.report(trailers({ application: 0.5 }), 0);
    w.report(trailers({ qps: 10 }), 0);
    w.report(new Headers({ [loadReportTrailer]: "not base64 protobuf!" }), 0);
    w.report(new Headers(), 0);
    assert.equal(w.weight(500), 0);
  });
});

describe("the weighted picker", () => {
  const endpoint = (name: string, weight: number) => {
    const w = new EndpointWeight(settings);
    if (weight > 0) w.report(trailers({ application: 1, qps: weight }), 0);
    return { name, weight: w };
  };
  const picks = (candidates: ReturnType<typeof endpoint>[], n: number, at = 500) => {
    const pick = createWeightedPicker(settings, () => at);
    const counts = new Map<string, number>();
    const order: string[] = [];
    for (let i = 0; i < n; i++) {
      const { name } = pick(candidates);
      order.push(name);
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    return { counts, order };
  };

  it("spreads calls in proportion to the weights, interleaved", () => {
    const { counts, order } = picks([endpoint("a", 300), endpoint("b", 100)], 40);
    assert.deepEqual(Object.fromEntries(counts), { a: 30, b: 10 });
    assert.deepEqual(order.slice(0, 4).sort(), ["a", "a", "a", "b"]);
  });

  it("gives an endpoint without a weight the mean of the others'", () => {
    const { counts } = picks([endpoint("a", 300), endpoint("b", 100), endpoint("c", 0)], 60);
    assert.deepEqual(Object.fromEntries(counts), { a: 30, b: 10, c: 20 });
  });

  it("takes turns equally while fewer than two endpoints have a weight", () => {
    const { counts } = picks([endpoint("a", 300), endpoint("b", 0)], 40);
    assert.deepEqual(Object.fromEntries(counts), { a: 20, b: 20 });
  });

  it("keeps weights within a tenth and ten times the mean", () => {
    // Mean 50.5: b counts as 5.05, not 1.
    const { counts } = picks([endpoint("a", 100), endpoint("b", 1)], 1000);
    assert.equal(counts.get("b"), Math.round((1000 * 5.05) / 105.05));
  });
});
