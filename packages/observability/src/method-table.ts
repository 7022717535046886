import type { DescMethod, DescService } from "@bufbuild/protobuf";
import {
  collectDefaultMetrics,
  type Metric,
  Registry,
  type RegistryContentType,
} from "prom-client";
import { codeNames, type Exemplar, type Labels, MethodStats } from "./method-stats.ts";

export type Side = "server" | "client";

/** What `createServerMetrics` and `createClientMetrics` have in common. */
export interface MethodTableOptions {
  /** Services whose methods exist from the start, at zero. */
  services?: DescService[];
  /** Where the metrics are registered. Default: a new prom-client `Registry`. */
  registry?: Registry<RegistryContentType>;
  /** Upper bounds in seconds of the histogram's buckets, increasing. Default: `defaultBuckets`. */
  buckets?: number[];
}

export interface MethodTable {
  registry: Registry<RegistryContentType>;
  methods: Map<DescMethod, MethodStats>;
  statsFor(method: DescMethod): MethodStats;
}

/** A sample as prom-client's registry reads it from a metric's `get()`. */
interface Sample {
  labels: Labels;
  value: number;
  metricName?: string;
  exemplar?: Exemplar | undefined;
}

const defaultBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The per-method records of one side, and the metric families reading them. */
export function createMethodTable(side: Side, options: MethodTableOptions): MethodTable {
  const registry = options.registry ?? new Registry();
  const bounds = options.buckets ?? defaultBuckets;
  if (bounds.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= (bounds[i - 1] as number)))) {
    throw new Error(`buckets must be finite and increasing, got [${bounds.join(", ")}]`);
  }
  const methods = new Map<DescMethod, MethodStats>();
  const add = (method: DescMethod) => {
    const stats = new MethodStats(method, bounds);
    methods.set(method, stats);
    return stats;
  };
  for (const service of options.services ?? []) for (const method of service.methods) add(method);
  const table = { registry, methods, statsFor: (m: DescMethod) => methods.get(m) ?? add(m) };

  const on = side === "server" ? "on the server" : "by the client";
  const count = (field: "started" | "received" | "sent", name: string, help: string) =>
    family(table, name, "counter", help, {
      read: (stats, out) => out.push({ labels: stats.labels, value: stats[field] }),
      reset: (stats) => {
        stats[field] = 0;
      },
    });
  count("started", `grpc_${side}_started_total`, `Total number of RPCs started on the ${side}.`);
  family(
    table,
    `grpc_${side}_handled_total`,
    "counter",
    `Total number of RPCs completed ${on}, regardless of success or failure.`,
    {
      read: (s, out) => {
        for (let code = 0; code < codeNames.length; code++) {
          const exemplar = s.handledExemplars[code];
          out.push({
            labels: s.codeLabels[code] as Labels,
            value: s.handled[code] as number,
            exemplar,
          });
        }
      },
      reset: (s) => {
        s.handled.fill(0);
        s.handledExemplars.length = 0;
      },
    },
  );
  count(
    "received",
    `grpc_${side}_msg_received_total`,
    `Total number of RPC stream messages received ${on}.`,
  );
  count(
    "sent",
    `grpc_${side}_msg_sent_total`,
    `Total number of gRPC stream messages sent by the ${side}.`,
  );
  const histogram = `grpc_${side}_handling_seconds`;
  family(
    table,
    histogram,
    "histogram",
    side === "server"
      ? "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server."
      : "Histogram of response latency (seconds) of the gRPC until it is finished by the application.",
    {
      read: (s, out) => {
        let cumulative = 0;
        for (let b = 0; b <= bounds.length; b++) {
          cumulative += s.buckets[b] as number;
          const le = b < bounds.length ? (bounds[b] as number) : "+Inf";
          const exemplar = s.bucketExemplars[b];
          out.push({
            labels: { ...s.labels, le },
            value: cumulative,
            metricName: `${histogram}_bucket`,
            exemplar,
          });
        }
        out.push({ labels: s.labels, value: s.sum, metricName: `${histogram}_sum` });
        out.push({ labels: s.labels, value: s.count, metricName: `${histogram}_count` });
      },
      reset: (s) => {
        s.buckets.fill(0);
        s.bucketExemplars.length = 0;
        s.sum = 0;
        s.count = 0;
      },
    },
  );
  return table;
}

/**
 * Registers one metric family computed from the method records when scraped. It has the shape
 * prom-client's `Registry` reads from its own metrics (`name`, `help`, `type`, `get`, `reset`), so
 * the registry prints it with its own code, in either format, next to any other metric.
 */
export function family(
  table: MethodTable,
  name: string,
  type: "counter" | "gauge" | "histogram",
  help: string,
  io: { read: (stats: MethodStats, out: Sample[]) => void; reset: (stats: MethodStats) => void },
): void {
  const metric = {
    // Not a constant: prom-client renames counters (drops `_total`) when printing OpenMetrics.
    name,
    help,
    type,
    aggregator: "sum",
    async get() {
      const values: Sample[] = [];
      for (const stats of table.methods.values()) io.read(stats, values);
      return { name: metric.name, help, type, aggregator: "sum", values };
    },
    reset() {
      for (const stats of table.methods.values()) io.reset(stats);
    },
  };
  // prom-client types registerMetric for its own classes only; the registry itself needs no more.
  table.registry.registerMetric(metric as unknown as Metric);
}

/** prom-client's process and Node.js metrics, unless the registry has them (they may be registered once only). */
export function registerDefaultMetrics(registry: Registry<RegistryContentType>): void {
  if (registry.getSingleMetric("process_cpu_seconds_total") === undefined) {
    collectDefaultMetrics({ register: registry });
  }
}
