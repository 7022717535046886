import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import type { PerfSummary } from "./perf-report.ts";
import { runCli } from "./testing/run-cli.ts";
import { type ServerProcess, startServerProcess } from "./testing/server-process.ts";

function assertConsistent(summary: PerfSummary, requests: number) {
  assert.equal(summary.requests, requests);
  const counted = Object.values(summary.statusCodes).reduce((a, b) => a + b, 0);
  assert.equal(counted, requests, "the status counts add up to the requests");
  const l = summary.latencyMs;
  assert.ok(
    0 < l.min && l.min <= l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max,
    JSON.stringify(l),
  );
  assert.ok(l.min <= l.mean && l.mean <= l.max);
  assert.ok(summary.requestsPerSecond > 0 && summary.durationSeconds > 0);
  assert.ok(summary.clientCpu.seconds >= 0 && summary.clientCpu.shareOfOneCore >= 0);
}

describe("keel perf", () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServerProcess();
  });

  it("--json: one summary object whose counts add up, percentiles in order", async () => {
    const args = ["--requests", "200", "--concurrency", "8", "--connections", "2", "--json"];
    const result = await runCli(["perf", "--url", server.url, ...args]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, "", "no progress bar when stderr is not a terminal");
    const summary = JSON.parse(result.stdout) as PerfSummary;
    assertConsistent(summary, 200);
    assert.deepEqual(summary.statusCodes, { OK: 200 });
    assert.deepEqual(summary.errors, {});
    assert.equal(summary.method, "GetUser");
    assert.equal(summary.concurrency, 8);
    assert.equal(summary.connections, 2);
  });

  it("loads each method in each protocol", async () => {
    // Unary and streaming in each protocol's framing: gRPC trailers, gRPC-Web's trailers frame,
    // Connect's status and end-of-stream message.
    const runs = [
      ["ListUsers", "connect"],
      ["CreateUser", "grpc"],
      ["TrackOrder", "grpc"],
      ["TrackOrder", "grpc-web"],
      ["TrackOrder", "connect"],
    ];
    const results = await Promise.all(
      runs.map(([method, protocol]) =>
        runCli(
          [
            "perf",
            "--url",
            server.url,
            "--method",
            method as string,
            "--protocol",
            protocol as string,
          ].concat(["--requests", "20", "--concurrency", "4", "--json"]),
          server.env,
        ),
      ),
    );
    for (const [i, result] of results.entries()) {
      assert.equal(result.code, 0, result.stderr);
      const summary = JSON.parse(result.stdout) as PerfSummary;
      assertConsistent(summary, 20);
      assert.deepEqual(
        summary.statusCodes,
        { OK: 20 },
        `${runs[i]}: ${JSON.stringify(summary.errors)}`,
      );
      // A cancelled order's events: CREATED and CANCELLED, read to the end of each stream.
      if (summary.method === "TrackOrder") assert.equal(summary.messages, 40);
    }
  });

  it("spreads connections over --threads, the counts still adding up", async () => {
    const result = await runCli(
      ["perf", "--url", server.url, "--requests", "101", "--concurrency", "6"].concat([
        "--connections",
        "3",
        "--threads",
        "2",
        "--json",
      ]),
    );
    assert.equal(result.code, 0, result.stderr);
    const summary = JSON.parse(result.stdout) as PerfSummary;
    assertConsistent(summary, 101);
    assert.deepEqual(summary.statusCodes, { OK: 101 });
    assert.equal(summary.threads, 2);
  });

  it("counts failed calls by status, with the first message of each", async () => {
    const result = await runCli([
      "perf",
      "--url",
      server.url,
      "--token",
      "bad",
      "--requests",
      "30",
      "--json",
    ]);
    assert.equal(result.code, 0, result.stderr);
    const summary = JSON.parse(result.stdout) as PerfSummary;
    assertConsistent(summary, 30);
    assert.deepEqual(summary.statusCodes, { UNAUTHENTICATED: 30 });
    assert.match(summary.errors.UNAUTHENTICATED ?? "", /authorization/);
    assert.match(
      result.stderr,
      /^keel perf: warning: 30 of 30 calls \(100%\) failed with UNAUTHENTICATED .*check --token/,
    );
  });

  it("runs for --duration and prints a summary for people", async () => {
    const result = await runCli([
      "perf",
      "--url",
      server.url,
      "--duration",
      "500ms",
      "--concurrency",
      "4",
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /^GetUser over grpc to http:\/\/127\.0\.0\.1:\d+: 4 workers on 1 connection$/m,
    );
    assert.match(result.stdout, /^ {2}requests +\d+ in 0\.[5-9]\d s: [\d.]+ requests\/s$/m);
    assert.match(result.stdout, /^ {2}latency ms +p50 [\d.]+ +p90 [\d.]+ +p99 [\d.]+ +max [\d.]+/m);
    assert.match(result.stdout, /^ {4}OK +\d+$/m);
  });

  it("warns when most calls were refused by the rate limit: the figures measure the limit", async () => {
    // Limits far below the load, as the defaults (100 a second) are below what a server answers.
    const limited = await startServerProcess({
      KEEL_RATE_LIMIT_RPS: "1",
      KEEL_RATE_LIMIT_BURST: "50",
    });
    const result = await runCli([
      "perf",
      "--url",
      limited.url,
      "--requests",
      "1000",
      "--concurrency",
      "16",
      "--json",
    ]);
    assert.equal(result.code, 0, result.stderr);
    const summary = JSON.parse(result.stdout) as PerfSummary;
    const refused = summary.statusCodes.RESOURCE_EXHAUSTED ?? 0;
    assert.ok(refused > 500, JSON.stringify(summary.statusCodes));
    assert.equal(
      result.stderr,
      `keel perf: warning: ${refused} of 1000 calls (${Math.round(refused / 10)}%) failed with RESOURCE_EXHAUSTED ("${summary.errors.RESOURCE_EXHAUSTED}"); you are measuring the server's limits, not the server: to benchmark, start it with the limits raised on purpose (KEEL_RATE_LIMIT_RPS and KEEL_RATE_LIMIT_BURST; for CreateUser KEEL_CREATE_USER_RATE_LIMIT_PER_MINUTE, _BURST and KEEL_PASSWORD_HASH_PER_CLIENT) and say so with the figures\n`,
    );
  });

  it("exits 1 when the server cannot be reached", async () => {
    const result = await runCli(["perf", "--url", "http://127.0.0.1:1", "--requests", "5"]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^keel perf: preparing GetUser failed: \[unavailable\]/);
  });
});
