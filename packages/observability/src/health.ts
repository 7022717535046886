import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { type Health, HealthCheckResponse_ServingStatus } from "@keel/gen/health/v1/health_pb";

/** A serving status of the gRPC health checking protocol. */
export type ServingStatus = HealthCheckResponse_ServingStatus;

/** Options for `createHealthService`. */
export interface HealthOptions {
  /**
   * Names of the services known from the start (e.g. `"user.v1.UserService"`), each with
   * `initialStatus`. The empty name, the whole server, is always known.
   * Default: `[]`.
   */
  services?: string[];
  /**
   * Status of the whole server (`""`) and of each of `services` at start.
   * Default: `SERVING`.
   */
  initialStatus?: ServingStatus;
}

/** The health service, and the handle the server uses to report its health through it. */
export interface HealthStatus {
  /** The `grpc.health.v1.Health` implementation, for `router.service(Health, service)`. */
  service: ServiceImpl<typeof Health>;
  /**
   * Sets the status of `service` (`""` for the whole server), registering it if it is unknown.
   * Ignored after `shutdown()`.
   */
  setStatus(service: string, status: ServingStatus): void;
  /** Sets the status of every known service, the whole server included. Ignored after `shutdown()`. */
  setAll(status: ServingStatus): void;
  /**
   * Sets every known service to NOT_SERVING for good: later `setStatus` and `setAll` calls are
   * ignored. Call it first in a graceful shutdown, so that load balancers stop sending calls
   * while the server drains the ones in flight.
   */
  shutdown(): void;
  /** The status of `service` now (`""` for the whole server); undefined for an unknown one. */
  status(service: string): ServingStatus | undefined;
  /** Number of Watch streams open now. */
  readonly watchers: number;
}

/** `List` answers at most this many services, as grpc-go does; more is RESOURCE_EXHAUSTED. */
const maxListedServices = 100;

/** One open Watch stream: only the newest status waits to be sent, so a slow reader costs O(1). */
interface Watcher {
  pending: ServingStatus | undefined;
  wake: (() => void) | undefined;
}

/**
 * Creates a `grpc.health.v1.Health` service that follows the gRPC health checking protocol
 * (https://github.com/grpc/grpc/blob/master/doc/health-checking.md): Check of an unknown service
 * fails with NOT_FOUND; Watch sends the current status at once (SERVICE_UNKNOWN for an unknown
 * service, keeping the stream open) and then each change, until the client cancels.
 */
export function createHealthService(options: HealthOptions = {}): HealthStatus {
  const initialStatus = options.initialStatus ?? HealthCheckResponse_ServingStatus.SERVING;
  const statuses = new Map<string, ServingStatus>([["", initialStatus]]);
  for (const name of options.services ?? []) statuses.set(name, initialStatus);
  const watchers = new Map<string, Set<Watcher>>();
  let watcherCount = 0;
  let isShutdown = false;

  function update(name: string, status: ServingStatus) {
    if (statuses.get(name) === status) return;
    statuses.set(name, status);
    for (const watcher of watchers.get(name) ?? []) {
      watcher.pending = status;
      watcher.wake?.();
    }
  }

  const service: ServiceImpl<typeof Health> = {
    check(request) {
      const status = statuses.get(request.service);
      if (status === undefined) {
        throw new ConnectError(`unknown service "${request.service}"`, Code.NotFound);
      }
      return { status };
    },
    list() {
      if (statuses.size > maxListedServices) {
        throw new ConnectError(
          `too many services to list (${statuses.size}, at most ${maxListedServices}); use Check`,
          Code.ResourceExhausted,
        );
      }
      return {
        statuses: Object.fromEntries([...statuses].map(([name, status]) => [name, { status }])),
      };
    },
    async *watch(request, ctx) {
      const name = request.service;
      const watcher: Watcher = {
        pending: statuses.get(name) ?? HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN,
        wake: undefined,
      };
      const onAbort = () => watcher.wake?.();
      const set = watchers.get(name) ?? new Set<Watcher>();
      watchers.set(name, set);
      set.add(watcher);
      watcherCount++;
      ctx.signal.addEventListener("abort", onAbort);
      try {
        let sent: ServingStatus | undefined;
        while (!ctx.signal.aborted) {
          const status = watcher.pending;
          watcher.pending = undefined;
          // A status that flipped and flipped back before the reader caught up is no change.
          if (status !== undefined && status !== sent) {
            sent = status;
            yield { status };
            continue;
          }
          await new Promise<void>((resolve) => {
            watcher.wake = resolve;
          });
          watcher.wake = undefined;
        }
      } finally {
        ctx.signal.removeEventListener("abort", onAbort);
        set.delete(watcher);
        if (set.size === 0) watchers.delete(name);
        watcherCount--;
      }
    },
  };

  return {
    service,
    status: (name) => statuses.get(name),
    setStatus(name, status) {
      if (!isShutdown) update(name, status);
    },
    setAll(status) {
      if (isShutdown) return;
      for (const name of statuses.keys()) update(name, status);
    },
    shutdown() {
      for (const name of statuses.keys())
        update(name, HealthCheckResponse_ServingStatus.NOT_SERVING);
      isShutdown = true;
    },
    get watchers() {
      return watcherCount;
    },
  };
}
