import { medianSample, type Sample } from "./measure.ts";

/** The two servers every row is measured on: keel's engine and connect-node's adapter. */
export const serverLabels = ["engine", "connect"] as const;
export type ServerLabel = (typeof serverLabels)[number];
const columnName: Record<ServerLabel, string> = { engine: "engine", connect: "connect-node" };

/** One row's samples (one per round) on each server. */
export type PerServer = Readonly<Record<ServerLabel, readonly Sample[]>>;

/** A row above this share of its core may have been paced by its load generator. */
const generatorBound = 0.8;
/** A row whose server's core was this busy with other processes was disturbed. */
const disturbed = 0.1;

/** One GetUser row of the closed-loop table. */
export interface UnaryLine {
  title: string;
  /** How its calls were kept in flight, for example `50 × 20`. */
  shape: string;
  samples: PerServer;
  /** gRPC's samples at the same shape, the ratio's reference; none: no ratio. */
  reference: PerServer | undefined;
}

/** One streaming row: an RPC over one protocol. */
export interface StreamLine {
  rpc: string;
  protocol: string;
  /** Messages streamed per call (sent, received or both). */
  messagesPerCall: number;
  samples: PerServer;
  /** The same RPC over gRPC, the ratio's reference. */
  reference: PerServer | undefined;
}

/** One open-loop row: a protocol on one server at a fixed rate. */
export interface OpenLoopLine {
  title: string;
  server: ServerLabel;
  /** The server's closed-loop calls/s for this protocol in the same run. */
  capacity: number;
  /** Calls/s offered. */
  offered: number;
  samples: readonly Sample[];
}

/**
 * Unary GetUser, closed loop: per row and shape, each server's median CPU per call and its ratio
 * to gRPC's at the same shape, calls/s and p99; the generator's highest CPU share; all errors.
 */
export function renderUnaryTable(lines: readonly UnaryLine[]): string {
  const header = ["protocol", "shape"];
  for (const server of serverLabels) {
    const name = columnName[server];
    header.push(`${name} CPU µs/call`, "× gRPC", `${name} calls/s`, `${name} p99 ms`);
  }
  return table(
    [...header, "client CPU", "errors"],
    2,
    lines.map((line) => {
      const medians = mediansOf(line.samples);
      const cells = [flagged(line.title, medians), line.shape];
      for (const server of serverLabels) {
        const s = medianOf(line.samples[server]);
        const ref = line.reference === undefined ? undefined : medianOf(line.reference[server]);
        cells.push(
          fixed(s?.cpuMicrosPer, 0),
          fixed(ratio(s?.cpuMicrosPer, ref?.cpuMicrosPer), 2),
          fixed(s?.rate, 0),
          fixed(s?.p99Ms, 1),
        );
      }
      return [...cells, percent(highest(medians, (s) => s.generatorCpuShare)), errors(medians)];
    }),
  );
}

/**
 * Streaming, closed loop: per RPC and protocol, each server's median CPU per message and per
 * call, the ratio to the same RPC over gRPC, messages/s and the p99 of a whole call.
 */
export function renderStreamTable(lines: readonly StreamLine[]): string {
  const header = ["RPC", "protocol", "messages/call"];
  for (const server of serverLabels) {
    const name = columnName[server];
    header.push(
      `${name} CPU µs/message`,
      `${name} CPU µs/call`,
      "× gRPC",
      `${name} messages/s`,
      `${name} p99 ms/call`,
    );
  }
  return table(
    [...header, "client CPU", "errors"],
    2,
    lines.map((line) => {
      const medians = mediansOf(line.samples);
      const cells = [flagged(line.rpc, medians), line.protocol, String(line.messagesPerCall)];
      for (const server of serverLabels) {
        const s = medianOf(line.samples[server]);
        const ref = line.reference === undefined ? undefined : medianOf(line.reference[server]);
        const perCall = s === undefined ? undefined : s.cpuMicrosPer * line.messagesPerCall;
        cells.push(
          fixed(s?.cpuMicrosPer, 1),
          fixed(perCall, 0),
          fixed(ratio(s?.cpuMicrosPer, ref?.cpuMicrosPer), 2),
          fixed(s?.rate, 0),
          fixed(s?.p99Ms, 1),
        );
      }
      return [...cells, percent(highest(medians, (s) => s.generatorCpuShare)), errors(medians)];
    }),
  );
}

/**
 * Unary GetUser, open loop: per protocol and server, the rate offered against the closed-loop
 * capacity, what was answered, CPU per call, p50/p99 against `targetP99Ms`, and all errors.
 */
export function renderOpenLoopTable(lines: readonly OpenLoopLine[], targetP99Ms: number): string {
  return table(
    [
      "protocol",
      "server",
      "closed-loop calls/s",
      "offered calls/s",
      "calls/s",
      "CPU µs/call",
      "p50 ms",
      "p99 ms",
      `p99 ≤ ${targetP99Ms} ms`,
      "client CPU",
      "errors",
    ],
    2,
    lines.map((line) => {
      const s = medianOf(line.samples);
      return [
        flagged(line.title, [s]),
        columnName[line.server],
        fixed(line.capacity, 0),
        fixed(line.offered, 0),
        fixed(s?.rate, 0),
        fixed(s?.cpuMicrosPer, 0),
        fixed(s?.p50Ms, 2),
        fixed(s?.p99Ms, 2),
        s === undefined ? "–" : s.p99Ms <= targetP99Ms ? "yes" : "no",
        percent(s?.generatorCpuShare),
        String(s?.errors ?? 0),
      ];
    }),
  );
}

/** A markdown table whose first `textColumns` columns are left-aligned, the others right. */
function table(header: readonly string[], textColumns: number, rows: readonly string[][]) {
  const align = header.map((_, i) => (i < textColumns ? "---" : "--:"));
  return [header, align, ...rows].map((cells) => `| ${cells.join(" | ")} |`).join("\n");
}

function medianOf(samples: readonly Sample[]): Sample | undefined {
  return samples.length === 0 ? undefined : medianSample(samples);
}

function fixed(value: number | undefined, digits: number): string {
  return value === undefined || !Number.isFinite(value) ? "–" : value.toFixed(digits);
}

function ratio(value: number | undefined, reference: number | undefined): number | undefined {
  return value === undefined || reference === undefined ? undefined : value / reference;
}

function percent(share: number | undefined): string {
  return share === undefined ? "–" : `${Math.round(share * 100)}%`;
}

/** The highest of one figure over some medians; undefined when none has it. */
function highest(
  medians: readonly (Sample | undefined)[],
  pick: (s: Sample) => number | undefined,
): number | undefined {
  const values = medians.flatMap((s) => {
    const value = s === undefined ? undefined : pick(s);
    return value === undefined ? [] : [value];
  });
  return values.length === 0 ? undefined : Math.max(...values);
}

function mediansOf(samples: PerServer): (Sample | undefined)[] {
  return serverLabels.map((server) => medianOf(samples[server]));
}

/**
 * The title, marked when, in any of the medians, the load generator used more than 80% of its
 * core or other processes more than 10% of the server's (the machine may be shared).
 */
function flagged(title: string, medians: readonly (Sample | undefined)[]): string {
  const generator = highest(medians, (s) => s.generatorCpuShare) ?? 0;
  const others = highest(medians, (s) => s.foreignCpuShare) ?? 0;
  const marks = [
    ...(generator > generatorBound ? ["generator-bound"] : []),
    ...(others > disturbed
      ? [`disturbed: others took ${percent(others)} of the server's core`]
      : []),
  ];
  return marks.length === 0 ? title : `${title} (${marks.join("; ")})`;
}

/** Every error of every round, on every server (`medianSample` sums them). */
function errors(medians: readonly (Sample | undefined)[]): string {
  return String(medians.reduce((sum, s) => sum + (s?.errors ?? 0), 0));
}
