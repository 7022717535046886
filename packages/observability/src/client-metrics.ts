import type { DescService } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import type { Registry, RegistryContentType } from "prom-client";
import { createMethodTable, registerDefaultMetrics } from "./method-table.ts";
import { createMetricsInterceptor } from "./metrics-interceptor.ts";

export interface ClientMetricsOptions {
  /** Services whose methods are reported at zero from the start. Default: none — a method appears at its first call. */
  services?: DescService[];
  /** Where the metrics are registered, for example the server's. Default: a new prom-client `Registry`. */
  registry?: Registry<RegistryContentType>;
  /** Upper bounds in seconds of the `grpc_client_handling_seconds` buckets. Default: as the server's. */
  buckets?: number[];
  /** Also register prom-client's process and Node.js metrics. Default: false — the server's registry usually has them. */
  collectDefaultMetrics?: boolean;
}

export interface ClientMetrics {
  /** The client interceptor recording every call, unary and streaming. */
  interceptor: Interceptor;
  /** The registry the metrics are in. */
  registry: Registry<RegistryContentType>;
}

/**
 * The client-side counterparts of `createServerMetrics`, as go-grpc-middleware names them:
 * `grpc_client_started_total`, `grpc_client_handled_total`, `grpc_client_msg_received_total`,
 * `grpc_client_msg_sent_total` and `grpc_client_handling_seconds`. A streaming call is handled
 * when the application has read its response to the end, or when it is cancelled or its deadline
 * passes (`Canceled`, `DeadlineExceeded`). An application that stops reading a stream without
 * cancelling it leaves the call open, to connect and to these metrics.
 */
export function createClientMetrics(options: ClientMetricsOptions = {}): ClientMetrics {
  const table = createMethodTable("client", options);
  if (options.collectDefaultMetrics ?? false) registerDefaultMetrics(table.registry);
  return { interceptor: createMetricsInterceptor(table, false), registry: table.registry };
}
