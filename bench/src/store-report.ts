import type { Sample } from "./measure.ts";

/** One measured load of our server on one store. */
export interface StoreSample {
  sample: Sample;
  firstError: string | undefined;
  /** CPU time of the PostgreSQL backends serving the server, per call (0 on SQLite). */
  pgCpuMicrosPer: number;
  /** Statements sent to the database per call (NaN when the server does not count them). */
  queriesPer: number;
  /** Share of calls that found every pooled connection busy. */
  exhaustedShare: number;
}

/**
 * A markdown table of each target's medians: calls/s, server CPU, PostgreSQL CPU and their sum
 * per call, queries per call, calls that waited for a connection, p50/p99, errors (all of them),
 * and the server's CPU per call in each round. The first target is the reference of the ratio.
 */
export function renderStoreTable<T>(
  results: ReadonlyMap<T, readonly StoreSample[]>,
  labelOf: (target: T) => string,
  median: (values: readonly number[]) => number,
): string {
  const lines = [
    "| store | calls/s | server CPU µs/call | PostgreSQL CPU µs/call | both µs/call | × first | queries/call | waited for a connection | p50 ms | p99 ms | errors | server CPU µs/call per round |",
    "| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --- |",
  ];
  let reference: number | undefined;
  for (const [target, rounds] of results) {
    const of = (pick: (r: StoreSample) => number) => median(rounds.map(pick));
    const server = of((r) => r.sample.cpuMicrosPer);
    const both = of((r) => r.sample.cpuMicrosPer + r.pgCpuMicrosPer);
    reference ??= both;
    const queries = of((r) => r.queriesPer);
    const waited = of((r) => r.exhaustedShare);
    const figure = (value: number, text: string) => (Number.isNaN(value) ? "–" : text);
    lines.push(
      `| ${labelOf(target)} | ${of((r) => r.sample.rate).toFixed(0)} | ${server.toFixed(0)} | ` +
        `${of((r) => r.pgCpuMicrosPer).toFixed(0)} | ${both.toFixed(0)} | ${(both / reference).toFixed(2)} | ` +
        `${figure(queries, queries.toFixed(2))} | ${figure(waited, `${(waited * 100).toFixed(0)}%`)} | ` +
        `${of((r) => r.sample.p50Ms).toFixed(2)} | ${of((r) => r.sample.p99Ms).toFixed(2)} | ` +
        `${rounds.reduce((sum, r) => sum + r.sample.errors, 0)} | ` +
        `${rounds.map((r) => r.sample.cpuMicrosPer.toFixed(0)).join(", ")} |`,
    );
  }
  return lines.join("\n");
}
