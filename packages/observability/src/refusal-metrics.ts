import type { DescMethod } from "@bufbuild/protobuf";
import type { ConnectError } from "@connectrpc/connect";
import { Counter, type Registry, type RegistryContentType } from "prom-client";
import { codeNames } from "./method-stats.ts";

/** Counts calls refused before they reached the interceptors. */
export interface RefusalMetrics {
  /** Counts one call of `method` refused with `error`; for the engine's `onRefusal`. */
  refused(method: DescMethod, error: ConnectError): void;
}

/**
 * `keel_server_refused_total{grpc_service, grpc_method, grpc_code}`: calls refused before any
 * interceptor ran (an oversized, malformed or stalled request body, a bad timeout or encoding, a
 * call shed), which `grpc_server_handled_total` therefore does not count. Series are made as
 * refusals happen, one per method and code: both come from the server's own tables, never from
 * what a client sent, so there are few.
 */
export function createRefusalMetrics(registry: Registry<RegistryContentType>): RefusalMetrics {
  const counter = new Counter({
    name: "keel_server_refused_total",
    help: "Calls refused before the interceptors ran (oversized, malformed or stalled requests, bad timeouts or encodings, load shed), by method and code.",
    labelNames: ["grpc_service", "grpc_method", "grpc_code"],
    registers: [registry],
  });
  return {
    refused(method, error) {
      counter.inc({
        grpc_service: method.parent.typeName,
        grpc_method: method.name,
        grpc_code: codeNames[error.code] ?? String(error.code),
      });
    },
  };
}
