import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type CpuProfile, formatSummary, packageOf, summarizeProfile } from "./profile-summary.ts";

const frame = (functionName: string, url = "") => ({ functionName, url, lineNumber: 9 });
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame("(root)") },
    { id: 2, callFrame: frame("(idle)") },
    {
      id: 3,
      callFrame: frame(
        "toBinary",
        "file:///r/node_modules/.pnpm/@bufbuild+protobuf@2.17.0/node_modules/@bufbuild/protobuf/dist/esm/to-binary.js",
      ),
    },
    {
      id: 4,
      callFrame: frame("getUser", "file:///r/packages/server/dist/user-handlers.js"),
      children: [3],
    },
    { id: 5, callFrame: frame("onStreamRead", "node:internal/stream_base_commons") },
  ],
  startTime: 1000,
  endTime: 1700,
  // Samples at 1100, 1200, 1300, 1400, 1500, 1600; each lasts until the next (the last: endTime).
  samples: [2, 3, 3, 4, 5, 2],
  timeDeltas: [100, 100, 100, 100, 100, 100],
};

describe("summarizeProfile", () => {
  it("sums self time by function and by package, leaving idle out of the shares", () => {
    const summary = summarizeProfile(profile);
    assert.equal(summary.totalMicros, 600);
    assert.equal(summary.busyMicros, 400);
    assert.deepEqual(
      summary.functions.map((f) => [f.name, f.micros, f.share]),
      [
        ["toBinary @bufbuild/protobuf/dist/esm/to-binary.js:10", 200, 0.5],
        ["getUser packages/server/dist/user-handlers.js:10", 100, 0.25],
        ["onStreamRead node:internal/stream_base_commons:10", 100, 0.25],
      ],
    );
    assert.deepEqual(
      summary.packages.map((p) => p.name),
      ["@bufbuild/protobuf", "@keel/server", "node:internal/stream_base_commons"],
    );
  });

  it("sums the total time of our functions, callees included", () => {
    assert.deepEqual(
      summarizeProfile(profile).ours.map((f) => [f.name, f.micros, f.share]),
      [["getUser packages/server/dist/user-handlers.js:10", 300, 0.75]],
    );
  });

  it("counts only samples within a window", () => {
    const summary = summarizeProfile(profile, { fromMicros: 1300, toMicros: 1400 });
    assert.deepEqual(
      summary.functions.map((f) => [f.name.split(" ")[0], f.micros]),
      [
        ["toBinary", 100],
        ["getUser", 100],
      ],
    );
  });

  it("formats markdown tables", () => {
    const text = formatSummary(summarizeProfile(profile), 2);
    assert.match(
      text,
      /\| 1 \| `toBinary @bufbuild\/protobuf\/dist\/esm\/to-binary.js:10` \| 0 \| 50.0% \|/,
    );
    assert.doesNotMatch(text, /\| 3 \|/);
  });
});

describe("packageOf", () => {
  it("names npm packages, our packages, Node modules and V8's pseudo-frames", () => {
    assert.equal(packageOf("file:///r/node_modules/pino/lib/tools.js", "f"), "pino");
    assert.equal(packageOf("file:///r/gen/dist/user/v1/user_pb.js", "f"), "@keel/gen");
    assert.equal(
      packageOf("file:///r/packages/interceptors/dist/audit.js", "f"),
      "@keel/interceptors",
    );
    assert.equal(packageOf("node:internal/http2/core", "f"), "node:internal/http2/core");
    assert.equal(packageOf("", "(garbage collector)"), "(garbage collector)");
    assert.equal(packageOf("", "writev"), "(native)");
  });
});
