import type { DescService } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import type { Registry, RegistryContentType } from "prom-client";
import { createMethodTable, family, registerDefaultMetrics } from "./method-table.ts";
import { createMetricsInterceptor } from "./metrics-interceptor.ts";

export interface ServerMetricsOptions {
  /**
   * The services served. Every series of each of their methods exists from the start, at zero,
   * as go-grpc-middleware's `InitializeMetrics` makes them: started, received, sent, in flight
   * and the histogram per method, and handled per method for every code. A method of another
   * service appears at its first call.
   */
  services: DescService[];
  /**
   * Where the metrics are registered; it may be shared with `createClientMetrics` and other
   * libraries. Default: a new prom-client `Registry`. Serve it with `createMetricsHandler` so a
   * scraper asking for OpenMetrics also gets the trace exemplars.
   */
  registry?: Registry<RegistryContentType>;
  /**
   * Upper bounds in seconds of the `grpc_server_handling_seconds` buckets, increasing.
   * Default: Prometheus' and go-grpc-middleware's `[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
   * 1, 2.5, 5, 10]`.
   */
  buckets?: number[];
  /**
   * Also register prom-client's process and Node.js metrics (CPU, memory, event-loop lag, GC),
   * unless the registry has them already. Default: true.
   */
  collectDefaultMetrics?: boolean;
}

export interface ServerMetrics {
  /** The server interceptor recording every call, unary and streaming. */
  interceptor: Interceptor;
  /** The registry the metrics are in. */
  registry: Registry<RegistryContentType>;
  /** Calls being handled now, all methods together: what `grpc_server_requests_in_flight` sums to. */
  inFlight(): number;
}

/**
 * Server metrics named and labelled as go-grpc-middleware's `providers/prometheus` names them, so
 * the dashboards and alerts of Go gRPC teams work unchanged: `grpc_server_started_total`,
 * `grpc_server_handled_total` (with `grpc_code`), `grpc_server_msg_received_total`,
 * `grpc_server_msg_sent_total` and the histogram `grpc_server_handling_seconds`, each labelled
 * `grpc_type`, `grpc_service` and `grpc_method`. One more, the gauge
 * `grpc_server_requests_in_flight`, has the same three labels, so it joins the others without
 * `ignoring` and `sum by (grpc_type)` shows the open streams.
 *
 * A unary call counts one message each way (sent only on success). A streaming call counts each
 * message as it passes and is handled when its response stream ends: completed, failed, or
 * cancelled by the client (`Canceled`, or `DeadlineExceeded` when its deadline passed). A plain
 * error counts as `Internal`, the code connect sends for it.
 *
 * When a sampled OpenTelemetry span is active as the call starts (the tracing interceptor, placed
 * before this one, runs `next` in its span's context), its `trace_id` and `span_id` become the
 * exemplar of the call's histogram bucket and `grpc_server_handled_total` series. They appear in
 * OpenMetrics output only.
 *
 * A call costs a map lookup and a few additions: the series are plain numbers per method, turned
 * into samples only when scraped (prom-client's own metrics hash their labels on every update).
 */
export function createServerMetrics(options: ServerMetricsOptions): ServerMetrics {
  const table = createMethodTable("server", options);
  family(
    table,
    "grpc_server_requests_in_flight",
    "gauge",
    "Number of RPCs being handled by the server.",
    {
      read: (s, out) => out.push({ labels: s.labels, value: s.inFlight }),
      // Calls in flight stay in flight: zeroing them would drive the gauge negative as they end.
      reset: () => {},
    },
  );
  if (options.collectDefaultMetrics ?? true) registerDefaultMetrics(table.registry);
  return {
    interceptor: createMetricsInterceptor(table, true),
    registry: table.registry,
    inFlight() {
      let n = 0;
      for (const stats of table.methods.values()) n += stats.inFlight;
      return n;
    },
  };
}
