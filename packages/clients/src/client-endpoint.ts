import type { BalancedEndpoint } from "./balancer.ts";
import { type CircuitBreakerOptions, createCircuitBreaker } from "./circuit-breaker.ts";
import { createEndpointConnection } from "./endpoint-connection.ts";
import { createEndpointHealth } from "./endpoint-health.ts";
import type { ConnectionOptions } from "./transport.ts";

/** How `createClientEndpoint` builds each endpoint of a client. */
export interface ClientEndpointOptions extends ConnectionOptions {
  /** The grpc.health.v1 service watched, or false for no health checking. */
  healthService: string | false;
  reconnectBackoff?: { initialMs?: number; maxMs?: number };
  circuitBreaker?: Omit<CircuitBreakerOptions, "now"> | false;
  /**
   * Called when the endpoint is found unreachable: a call finds its connection broken, the
   * server sends GOAWAY, or the health Watch fails with UNAVAILABLE.
   */
  onConnectionFailed?: () => void;
}

/**
 * One endpoint of a client: its connection, its health (reconnection, and the grpc.health.v1
 * Watch unless `healthService` is false) and its circuit breaker; `close` stops them all.
 */
export function createClientEndpoint(
  url: string,
  options: ClientEndpointOptions,
): BalancedEndpoint {
  const connection = createEndpointConnection(url, options);
  const { healthService, reconnectBackoff, onConnectionFailed } = options;
  const health = createEndpointHealth({
    url,
    probe: connection.probe,
    ...(healthService === false
      ? {}
      : { watch: { transport: connection.healthTransport(), service: healthService } }),
    ...(reconnectBackoff?.initialMs === undefined
      ? {}
      : { initialBackoffMs: reconnectBackoff.initialMs }),
    ...(reconnectBackoff?.maxMs === undefined ? {} : { maxBackoffMs: reconnectBackoff.maxMs }),
    ...(onConnectionFailed === undefined ? {} : { onUnreachable: onConnectionFailed }),
  });
  connection.onGoaway(() => health.connectionFailed(`${url}: received GOAWAY`));
  return {
    url,
    transport: connection.transport,
    health,
    ...(options.circuitBreaker === false
      ? {}
      : { breaker: createCircuitBreaker(options.circuitBreaker) }),
    close() {
      health.close();
      connection.close();
    },
  };
}
