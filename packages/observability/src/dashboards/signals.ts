/**
 * What the dashboard shows and the alerts watch, as PromQL over the metrics this package defines
 * (go-grpc-middleware's names, keel's own, prom-client's process and Node.js metrics; the store's
 * exist only on PostgreSQL). Each entry names the metric families it reads, so the generator can
 * refuse one that no definition provides.
 *
 * Grafana's `$__rate_interval` and the `$job` and `$instance` variables appear in panel queries;
 * alert rules use fixed windows and no variables.
 */

/** Codes that mean the server failed the caller, as opposed to the caller's own mistakes. */
export const serverErrorCodes = "Unknown|Internal|Unavailable|DataLoss|DeadlineExceeded";

/** A panel's query: PromQL and the legend of its series. */
export interface PanelQuery {
  expr: string;
  legend: string;
}

/** A time-series panel. */
export interface PanelSignal {
  title: string;
  description: string;
  /** Grafana's unit id: reqps, percentunit, s, bytes, short. */
  unit: string;
  queries: PanelQuery[];
  /** Metric families the queries read. */
  metrics: string[];
}

/** A row of panels. */
export interface RowSignal {
  title: string;
  panels: PanelSignal[];
}

/** A Prometheus alerting rule. */
export interface AlertSignal {
  alert: string;
  expr: string;
  for: string;
  severity: "warning" | "critical";
  summary: string;
  description: string;
  metrics: string[];
}

const sel = 'job=~"$job", instance=~"$instance"';
const rate = (metric: string, labels = "") =>
  `rate(${metric}{${sel}${labels === "" ? "" : `, ${labels}`}}[$__rate_interval])`;
const quantile = (q: number) => ({
  expr: `histogram_quantile(${q}, sum by (grpc_service, grpc_method, le) (${rate("grpc_server_handling_seconds_bucket", 'grpc_type="unary"')}))`,
  legend: `p${Math.round(q * 100)} {{grpc_service}}/{{grpc_method}}`,
});
const latency = (q: number): PanelSignal => ({
  title: `Unary latency p${Math.round(q * 100)} by method`,
  description: `The ${q * 100}th percentile of unary calls' handling time, from the histogram's buckets (streams are left out: their time is how long they stay open).`,
  unit: "s",
  queries: [quantile(q)],
  metrics: ["grpc_server_handling_seconds"],
});

/** A panel of gauges per process (the largest value when an instance has several series). */
const perProcess = (
  title: string,
  description: string,
  unit: string,
  series: Record<string, string>,
): PanelSignal => ({
  title,
  description,
  unit,
  queries: Object.entries(series).map(([legend, metric]) => ({
    expr: `max by (instance) (${metric}{${sel}})`,
    legend: `${legend} {{instance}}`,
  })),
  metrics: Object.values(series),
});

/** The dashboard's rows, top to bottom. */
export const rows: RowSignal[] = [
  {
    title: "Traffic and errors",
    panels: [
      {
        title: "Requests by method",
        description: "Calls started per second, by service and method, every call kind.",
        unit: "reqps",
        queries: [
          {
            expr: `sum by (grpc_service, grpc_method) (${rate("grpc_server_started_total")})`,
            legend: "{{grpc_service}}/{{grpc_method}}",
          },
        ],
        metrics: ["grpc_server_started_total"],
      },
      {
        title: "Errors by code",
        description: "Calls finished with a code other than OK, per second, by code.",
        unit: "reqps",
        queries: [
          {
            expr: `sum by (grpc_code) (${rate("grpc_server_handled_total", 'grpc_code!="OK"')})`,
            legend: "{{grpc_code}}",
          },
        ],
        metrics: ["grpc_server_handled_total"],
      },
      {
        title: "Server error ratio by method",
        description: `Share of calls that failed on the server's side (${serverErrorCodes.replaceAll("|", ", ")}); callers' mistakes (InvalidArgument, NotFound, …) are not counted.`,
        unit: "percentunit",
        queries: [
          {
            expr: `sum by (grpc_service, grpc_method) (${rate("grpc_server_handled_total", `grpc_code=~"${serverErrorCodes}"`)}) / sum by (grpc_service, grpc_method) (${rate("grpc_server_handled_total")})`,
            legend: "{{grpc_service}}/{{grpc_method}}",
          },
        ],
        metrics: ["grpc_server_handled_total"],
      },
      {
        title: "Refused for load (RESOURCE_EXHAUSTED)",
        description:
          "Calls refused with RESOURCE_EXHAUSTED per second, by method: rate limits, the password-hashing queue, message size limits.",
        unit: "reqps",
        queries: [
          {
            expr: `sum by (grpc_service, grpc_method) (${rate("grpc_server_handled_total", 'grpc_code="ResourceExhausted"')})`,
            legend: "{{grpc_service}}/{{grpc_method}}",
          },
        ],
        metrics: ["grpc_server_handled_total"],
      },
      {
        title: "Refused before handling",
        description:
          "Calls refused before the interceptors ran, per second, by method and code: oversized, malformed or stalled request bodies, bad timeouts or encodings, load shed. The panels above do not count them.",
        unit: "reqps",
        queries: [
          {
            expr: `sum by (grpc_service, grpc_method, grpc_code) (${rate("keel_server_refused_total")})`,
            legend: "{{grpc_service}}/{{grpc_method}} {{grpc_code}}",
          },
        ],
        metrics: ["keel_server_refused_total"],
      },
    ],
  },
  {
    title: "Latency",
    panels: [latency(0.5), latency(0.9), latency(0.99)],
  },
  {
    title: "Concurrency and streams",
    panels: [
      {
        title: "Unary calls in flight",
        description: "Unary calls being handled now, by method.",
        unit: "short",
        queries: [
          {
            expr: `sum by (grpc_service, grpc_method) (grpc_server_requests_in_flight{${sel}, grpc_type="unary"})`,
            legend: "{{grpc_service}}/{{grpc_method}}",
          },
        ],
        metrics: ["grpc_server_requests_in_flight"],
      },
      {
        title: "Open streams",
        description: "Streaming calls open now, by kind (server, client and bidi streaming).",
        unit: "short",
        queries: [
          {
            expr: `sum by (grpc_type) (grpc_server_requests_in_flight{${sel}, grpc_type!="unary"})`,
            legend: "{{grpc_type}}",
          },
        ],
        metrics: ["grpc_server_requests_in_flight"],
      },
      {
        title: "Stream messages",
        description: "Messages received and sent per second on streaming calls.",
        unit: "short",
        queries: [
          {
            expr: `sum by (grpc_type) (${rate("grpc_server_msg_received_total", 'grpc_type!="unary"')})`,
            legend: "received {{grpc_type}}",
          },
          {
            expr: `sum by (grpc_type) (${rate("grpc_server_msg_sent_total", 'grpc_type!="unary"')})`,
            legend: "sent {{grpc_type}}",
          },
        ],
        metrics: ["grpc_server_msg_received_total", "grpc_server_msg_sent_total"],
      },
      {
        title: "Calls to other services",
        description: "Client calls this server makes (OrderService to UserService), by code.",
        unit: "reqps",
        queries: [
          {
            expr: `sum by (grpc_service, grpc_method, grpc_code) (${rate("grpc_client_handled_total")})`,
            legend: "{{grpc_service}}/{{grpc_method}} {{grpc_code}}",
          },
        ],
        metrics: ["grpc_client_handled_total"],
      },
    ],
  },
  {
    title: "Load shedding",
    panels: [
      {
        title: "Shed calls by reason",
        description:
          "Calls refused before any work because the process was overloaded (event-loop delay or utilization) or above a memory soft limit, per second, by reason. They never reach the interceptors, so the panels above do not count them.",
        unit: "reqps",
        queries: [
          {
            expr: `sum by (reason) (${rate("keel_server_shed_total")})`,
            legend: "{{reason}}",
          },
        ],
        metrics: ["keel_server_shed_total"],
      },
      perProcess(
        "Share of new calls shed",
        "The share of new calls each process refuses now (0 when not shedding, 1 above a memory soft limit).",
        "percentunit",
        { shed: "keel_server_shed_ratio" },
      ),
    ],
  },
  {
    title: "PostgreSQL pool",
    panels: [
      {
        title: "Database statements",
        description:
          "Statements sent to PostgreSQL per second (BEGIN and COMMIT included), per process. Empty on the embedded SQLite store.",
        unit: "short",
        queries: [
          {
            expr: `sum by (instance) (${rate("keel_store_queries_total")})`,
            legend: "{{instance}}",
          },
        ],
        metrics: ["keel_store_queries_total"],
      },
      {
        title: "Statements per call",
        description:
          "Database statements per finished call, per process: a rise after a release means a call makes more round trips than it did.",
        unit: "short",
        queries: [
          {
            expr: `sum by (instance) (${rate("keel_store_queries_total")}) / sum by (instance) (${rate("grpc_server_handled_total")})`,
            legend: "{{instance}}",
          },
        ],
        metrics: ["keel_store_queries_total", "grpc_server_handled_total"],
      },
      {
        title: "Pool connections and waiting queries",
        description:
          "Open connections of each process's pool by state (busy, idle), and queries waiting for a connection now. Busy at KEEL_DATABASE_POOL_SIZE with queries waiting means the pool is the bottleneck.",
        unit: "short",
        queries: [
          {
            expr: `sum by (instance, state) (keel_store_pool_connections{${sel}})`,
            legend: "{{state}} {{instance}}",
          },
          {
            expr: `max by (instance) (keel_store_pool_waiting{${sel}})`,
            legend: "waiting {{instance}}",
          },
        ],
        metrics: ["keel_store_pool_connections", "keel_store_pool_waiting"],
      },
      {
        title: "Pool exhausted",
        description:
          "Store calls per second that found every pooled connection busy and had to wait for one, per process.",
        unit: "reqps",
        queries: [
          {
            expr: `sum by (instance) (${rate("keel_store_pool_exhausted_total")})`,
            legend: "{{instance}}",
          },
        ],
        metrics: ["keel_store_pool_exhausted_total"],
      },
    ],
  },
  {
    title: "Process",
    panels: [
      perProcess(
        "Event-loop delay",
        "How late the event loop runs timers: p50 and p99 per process. Everything waits behind a busy loop.",
        "s",
        { p99: "nodejs_eventloop_lag_p99_seconds", p50: "nodejs_eventloop_lag_p50_seconds" },
      ),
      perProcess("Memory", "Resident memory and the V8 heap in use, per process.", "bytes", {
        resident: "process_resident_memory_bytes",
        "heap used": "nodejs_heap_size_used_bytes",
      }),
      {
        title: "CPU",
        description: "CPU seconds per second, per process (1 is a whole core).",
        unit: "short",
        queries: [
          {
            expr: `sum by (instance) (${rate("process_cpu_seconds_total")})`,
            legend: "{{instance}}",
          },
        ],
        metrics: ["process_cpu_seconds_total"],
      },
      {
        title: "Garbage collection",
        description: "Seconds per second spent in garbage collection, by kind.",
        unit: "short",
        queries: [
          {
            expr: `sum by (kind) (${rate("nodejs_gc_duration_seconds_sum")})`,
            legend: "{{kind}}",
          },
        ],
        metrics: ["nodejs_gc_duration_seconds"],
      },
    ],
  },
];

const total = (by: string) => `sum by (${by}) (rate(grpc_server_handled_total[5m]))`;

/** The alerting rules. */
export const alerts: AlertSignal[] = [
  {
    alert: "KeelHighErrorRatio",
    expr: `sum by (job) (rate(grpc_server_handled_total{grpc_code=~"${serverErrorCodes}"}[5m])) / ${total("job")} > 0.05`,
    for: "5m",
    severity: "critical",
    summary: "More than 5% of calls fail on the server's side",
    description:
      "{{ $labels.job }}: {{ $value | humanizePercentage }} of calls ended with Unknown, Internal, Unavailable, DataLoss or DeadlineExceeded over 5 minutes.",
    metrics: ["grpc_server_handled_total"],
  },
  {
    alert: "KeelHighLatency",
    expr: 'histogram_quantile(0.99, sum by (job, grpc_service, grpc_method, le) (rate(grpc_server_handling_seconds_bucket{grpc_type="unary"}[5m]))) > 1',
    for: "10m",
    severity: "warning",
    summary: "Unary calls' p99 latency is above 1 s",
    description:
      "{{ $labels.job }} {{ $labels.grpc_service }}/{{ $labels.grpc_method }}: p99 {{ $value | humanizeDuration }} over 5 minutes.",
    metrics: ["grpc_server_handling_seconds"],
  },
  {
    alert: "KeelEventLoopSaturated",
    expr: "max by (job, instance) (nodejs_eventloop_lag_p99_seconds) > 0.1",
    for: "5m",
    severity: "warning",
    summary: "The event loop is late by more than 100 ms (p99)",
    description:
      "{{ $labels.instance }}: event-loop delay p99 {{ $value | humanizeDuration }}; every call waits behind it. Take a CPU profile (docs/operations.md: Profiling).",
    metrics: ["nodejs_eventloop_lag_p99_seconds"],
  },
  {
    alert: "KeelCpuSaturated",
    expr: "sum by (job, instance) (rate(process_cpu_seconds_total[5m])) > 0.9",
    for: "10m",
    severity: "warning",
    summary: "A process uses more than 90% of a core",
    description:
      "{{ $labels.instance }}: {{ $value | humanizePercentage }} of a core for 10 minutes; JavaScript runs on one core per process: add workers or instances.",
    metrics: ["process_cpu_seconds_total"],
  },
  {
    alert: "KeelResourceExhausted",
    expr: `sum by (job) (rate(grpc_server_handled_total{grpc_code="ResourceExhausted"}[5m])) / ${total("job")} > 0.01`,
    for: "10m",
    severity: "warning",
    summary: "More than 1% of calls are refused with RESOURCE_EXHAUSTED",
    description:
      "{{ $labels.job }}: {{ $value | humanizePercentage }} of calls refused for load (rate limits, the password-hashing queue, message sizes) over 5 minutes.",
    metrics: ["grpc_server_handled_total"],
  },
  {
    alert: "KeelShedding",
    expr: "sum by (job, instance) (rate(keel_server_shed_total[5m])) / (sum by (job, instance) (rate(keel_server_shed_total[5m])) + sum by (job, instance) (rate(grpc_server_handled_total[5m]))) > 0.01",
    for: "5m",
    severity: "warning",
    summary: "An instance sheds more than 1% of its calls",
    description:
      "{{ $labels.instance }}: {{ $value | humanizePercentage }} of calls refused by load shedding over 5 minutes (overload or memory, see keel_server_shed_total by reason): add instances or workers, or find what got slower.",
    metrics: ["keel_server_shed_total", "grpc_server_handled_total"],
  },
  {
    alert: "KeelMemoryLimit",
    expr: 'sum by (job, instance) (rate(keel_server_shed_total{reason="memory"}[5m])) > 0',
    for: "2m",
    severity: "critical",
    summary: "An instance is above a memory limit and refuses calls",
    description:
      "{{ $labels.instance }}: above its memory soft limit (refusing every call) or hard limit (NOT_SERVING); take a heap snapshot (docs/operations.md: Profiling) before it is restarted.",
    metrics: ["keel_server_shed_total"],
  },
  {
    alert: "KeelDatabasePoolWaiting",
    expr: "max by (job, instance) (keel_store_pool_waiting) > 0",
    for: "5m",
    severity: "warning",
    summary: "Queries have waited for a PostgreSQL connection for 5 minutes",
    description:
      "{{ $labels.instance }}: {{ $value }} queries waiting for a pooled database connection at every evaluation for 5 minutes; calls are slowed by the pool, not by PostgreSQL's work. Raise KEEL_DATABASE_POOL_SIZE (within PostgreSQL's max_connections across instances) or find the slow statements.",
    metrics: ["keel_store_pool_waiting"],
  },
];
