import { createClient } from "@connectrpc/connect";
import { createTransport, type Protocol, type TlsOptions } from "@keel/clients";
import {
  Health,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponse_ServingStatusSchema,
} from "@keel/gen/health/v1/health_pb";
import { enumName } from "./enum-name.ts";

export interface CheckHealthOptions {
  baseUrl: string;
  protocol: Protocol;
  token: string | undefined;
  /** CA and client certificate for an https:// server, when given. */
  tls: TlsOptions | undefined;
  /** The service to check; "" is the whole server. */
  service: string;
  /** Deadline of the check, connecting included, in milliseconds. */
  timeoutMs: number;
}

/**
 * One grpc.health.v1.Health/Check call, as a Kubernetes gRPC probe makes it. Resolves to the
 * status name (`SERVING`, `NOT_SERVING`, …); rejects when there is no answer in time.
 */
export async function checkHealth(
  options: CheckHealthOptions,
): Promise<{ serving: boolean; status: string }> {
  const health = createClient(Health, createTransport(options));
  const { status } = await health.check(
    { service: options.service },
    { timeoutMs: options.timeoutMs },
  );
  return {
    serving: status === HealthCheckResponse_ServingStatus.SERVING,
    status: enumName(HealthCheckResponse_ServingStatusSchema, status),
  };
}
