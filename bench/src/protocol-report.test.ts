import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Sample } from "./measure.ts";
import { renderOpenLoopTable, renderStreamTable, renderUnaryTable } from "./protocol-report.ts";

function sample(figures: Partial<Sample>): Sample {
  return {
    rate: 1000,
    completed: 1000,
    p50Ms: 1,
    p99Ms: 2,
    maxMs: 3,
    cpuMicrosPer: 100,
    peakRssMiB: 100,
    errors: 0,
    generatorCpuShare: 0.1,
    ...figures,
  };
}

/** The table's cells, row by row, header and alignment rows included. */
function cells(table: string): string[][] {
  return table.split("\n").map((line) =>
    line
      .slice(2, -2)
      .split(" | ")
      .map((cell) => cell.trim()),
  );
}

describe("renderUnaryTable", () => {
  const grpc = {
    engine: [sample({ cpuMicrosPer: 100 }), sample({ cpuMicrosPer: 120 })],
    connect: [sample({ cpuMicrosPer: 300 })],
  };

  it("gives each server's median CPU per call, its ratio to gRPC, calls/s and p99, per shape", () => {
    const rows = cells(
      renderUnaryTable([
        { title: "gRPC", shape: "50 × 20", samples: grpc, reference: grpc },
        {
          title: "Connect JSON",
          shape: "50 × 20",
          samples: {
            engine: [sample({ cpuMicrosPer: 165, rate: 5000, p99Ms: 12.34 })],
            connect: [sample({ cpuMicrosPer: 450, rate: 2000, p99Ms: 40, errors: 3 })],
          },
          reference: grpc,
        },
      ]),
    );
    assert.equal(rows[0]?.[0], "protocol");
    assert.equal(rows[0]?.[1], "shape");
    assert.equal(rows[1]?.join(" "), "--- --- --: --: --: --: --: --: --: --: --: --:");
    assert.deepEqual(rows[2], [
      "gRPC",
      "50 × 20",
      "110",
      "1.00",
      "1000",
      "2.0",
      "300",
      "1.00",
      "1000",
      "2.0",
      "10%",
      "0",
    ]);
    assert.deepEqual(rows[3], [
      "Connect JSON",
      "50 × 20",
      "165",
      "1.50",
      "5000",
      "12.3",
      "450",
      "1.50",
      "2000",
      "40.0",
      "10%",
      "3",
    ]);
  });

  it("marks a row whose generator used more than 80% of its core, and gives its highest share", () => {
    const rows = cells(
      renderUnaryTable([
        {
          title: "REST",
          shape: "50 × 1 (HTTP/1.1)",
          samples: {
            engine: [sample({ generatorCpuShare: 0.85 })],
            connect: [sample({ generatorCpuShare: 0.5 })],
          },
          reference: grpc,
        },
      ]),
    );
    assert.equal(rows[2]?.[0], "REST (generator-bound)");
    assert.equal(rows[2]?.[10], "85%");
  });

  it("writes a dash where a figure is missing: no reference, or no samples", () => {
    const rows = cells(
      renderUnaryTable([
        {
          title: "gRPC",
          shape: "10 × 1",
          samples: { engine: [sample({})], connect: [] },
          reference: undefined,
        },
      ]),
    );
    assert.deepEqual(rows[2]?.slice(2, 10), ["100", "–", "1000", "2.0", "–", "–", "–", "–"]);
  });
});

describe("renderStreamTable", () => {
  it("gives CPU per message and per call, and the ratio to the same RPC over gRPC", () => {
    const grpc = {
      engine: [sample({ cpuMicrosPer: 10, rate: 90_000 })],
      connect: [sample({ cpuMicrosPer: 30 })],
    };
    const rows = cells(
      renderStreamTable([
        { rpc: "Bidi", protocol: "gRPC", messagesPerCall: 100, samples: grpc, reference: grpc },
        {
          rpc: "Bidi",
          protocol: "Connect",
          messagesPerCall: 100,
          samples: {
            engine: [sample({ cpuMicrosPer: 12.5, rate: 80_000, p99Ms: 150 })],
            connect: [sample({ cpuMicrosPer: 45 })],
          },
          reference: grpc,
        },
      ]),
    );
    assert.deepEqual(rows[2]?.slice(0, 8), [
      "Bidi",
      "gRPC",
      "100",
      "10.0",
      "1000",
      "1.00",
      "90000",
      "2.0",
    ]);
    assert.deepEqual(rows[3]?.slice(2, 13), [
      "100",
      "12.5",
      "1250",
      "1.25",
      "80000",
      "150.0",
      "45.0",
      "4500",
      "1.50",
      "1000",
      "2.0",
    ]);
  });
});

describe("renderOpenLoopTable", () => {
  it("gives the rate offered against capacity, p50/p99 against the target, and all errors", () => {
    const rows = cells(
      renderOpenLoopTable(
        [
          {
            title: "gRPC",
            server: "engine",
            capacity: 8000,
            offered: 4000,
            samples: [sample({ rate: 3990, p50Ms: 1.234, p99Ms: 8.5, errors: 1 })],
          },
          {
            title: "gRPC",
            server: "connect",
            capacity: 2000,
            offered: 1000,
            samples: [sample({ p99Ms: 10.5, errors: 2 }), sample({ p99Ms: 12, errors: 4 })],
          },
        ],
        10,
      ),
    );
    assert.equal(rows[0]?.[8], "p99 ≤ 10 ms");
    assert.deepEqual(rows[2], [
      "gRPC",
      "engine",
      "8000",
      "4000",
      "3990",
      "100",
      "1.23",
      "8.50",
      "yes",
      "10%",
      "1",
    ]);
    assert.deepEqual(rows[3]?.slice(1, 11), [
      "connect-node",
      "2000",
      "1000",
      "1000",
      "100",
      "1.00",
      "11.25",
      "no",
      "10%",
      "6",
    ]);
  });
});

describe("disturbed rows", () => {
  it("marks a row whose server's core was more than 10% busy with other processes", () => {
    const quiet = sample({ foreignCpuShare: 0.02 });
    const rows = cells(
      renderUnaryTable([
        {
          title: "gRPC",
          shape: "50 × 1",
          samples: { engine: [quiet], connect: [sample({ foreignCpuShare: 0.35 })] },
          reference: undefined,
        },
        {
          title: "gRPC-Web",
          shape: "50 × 1",
          samples: { engine: [quiet], connect: [quiet] },
          reference: undefined,
        },
      ]),
    );
    assert.equal(rows[2]?.[0], "gRPC (disturbed: others took 35% of the server's core)");
    assert.equal(rows[3]?.[0], "gRPC-Web");
  });
});
