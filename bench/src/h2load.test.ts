import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseH2loadLog, parseH2loadOutput } from "./h2load.ts";

// What h2load 1.52 prints (progress lines left out).
const report = `starting benchmark...
spawning thread #0: 2 total client(s). Timing-based test with 1s of warm-up time and 2s of main duration for measurements.
Application protocol: h2c

finished in 3.00s, 19587.50 req/s, 1.98MB/s
requests: 39175 total, 39175 started, 39170 done, 39160 succeeded, 10 failed, 10 errored, 0 timeout
status codes: 39160 2xx, 0 3xx, 0 4xx, 2 5xx
traffic: 3.96MB (4152746) total, 262.88KB (269193) headers (space savings 96.40%), 3.69MB (3871800) data
                     min         max         mean         sd        +/- sd
time for request:      179us     29.25ms       500us      1.34ms    99.23%
`;

describe("parseH2loadOutput", () => {
  it("reads the totals, counting failed, unfinished and non-2xx requests as errors", () => {
    assert.deepEqual(parseH2loadOutput(report), {
      seconds: 3,
      requestsPerSecond: 19587.5,
      total: 39175,
      succeeded: 39160,
      errors: 5 + 10 + 2,
    });
  });

  it("reads durations in milliseconds", () => {
    const fast = report.replace("finished in 3.00s", "finished in 220.44ms");
    assert.equal(parseH2loadOutput(fast).seconds, 0.22044);
  });

  it("fails on anything else", () => {
    assert.throws(() => parseH2loadOutput("connect: Connection refused"), /cannot read/);
  });
});

describe("parseH2loadLog", () => {
  it("returns the latencies of 2xx responses in milliseconds", () => {
    const log =
      "1795291187399142\t200\t19376\n1795291187399143\t-1\t500\n1795291187399143\t200\t1500\n";
    assert.deepEqual([...parseH2loadLog(log)], [19.376, 1.5]);
  });

  it("leaves out the calls that started before the measured period (h2load's warm-up)", () => {
    const log = [
      "1795291187000000\t200\t3200000", // an opening call that waited 3.2 s
      "1795291187999999\t200\t900000",
      "1795291188000000\t200\t2000",
      "1795291188500000\t200\t2500",
    ].join("\n");
    assert.deepEqual([...parseH2loadLog(log, 1795291188000000)], [2, 2.5]);
    assert.equal(parseH2loadLog(log).length, 4);
  });
});
