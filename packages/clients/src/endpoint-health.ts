import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponse_ServingStatusSchema,
} from "@keel/gen/health/v1/health_pb";

/**
 * The endpoint's connection, after a gRPC subchannel's connectivity states:
 * - `idle`: not known to be broken (calls connect as they need);
 * - `ready`: it failed, and has been reached again since;
 * - `connecting`: checking whether it can be reached, after a failure or a GOAWAY;
 * - `transient_failure`: it could not be reached; the next check waits for the backoff.
 */
export type Connectivity = "idle" | "ready" | "connecting" | "transient_failure";

/**
 * What the endpoint's grpc.health.v1 Watch says:
 * - `unknown`: no answer yet (or health checking is off);
 * - `serving`, `not_serving`: its latest answer (SERVICE_UNKNOWN counts as not serving);
 * - `unreachable`: the Watch failed with UNAVAILABLE, the server is gone or going;
 * - `unchecked`: the server does not implement health checking, or refused the Watch otherwise;
 *   the calls' own outcomes decide.
 */
export type HealthState = "unknown" | "serving" | "not_serving" | "unreachable" | "unchecked";

export interface EndpointHealthOptions {
  /** The endpoint, for messages. */
  url: string;
  /**
   * Checks that the endpoint can be reached again; resolves true when it can. Without it, a
   * failed endpoint returns to the rotation once the backoff has passed, and the next call to it
   * finds out.
   */
  probe?: () => Promise<boolean>;
  /** Watch grpc.health.v1 for `service` over `transport`. Without it there is no health checking. */
  watch?: { transport: Transport; service: string };
  /** Delay before the second check of a connection or Watch, in ms; it grows 1.6× per failure. Default 1000. */
  initialBackoffMs?: number;
  /** Longest delay between retries, in ms. Default 10000. */
  maxBackoffMs?: number;
  /** Random numbers in [0, 1) for the jitter (±20%). Default `Math.random`. */
  random?: () => number;
  /**
   * Called whenever the endpoint is found unreachable: a call reported its connection broken, or
   * the health Watch failed with UNAVAILABLE (its connection broke). A client of a DNS name then
   * resolves the name again, as a gRPC channel does when a subchannel fails.
   */
  onUnreachable?: () => void;
}

/** A snapshot of an endpoint's health. */
export interface EndpointHealthStatus {
  connectivity: Connectivity;
  health: HealthState;
  /** Why the endpoint is out of the rotation, when it is. */
  reason?: string;
}

export interface EndpointHealth {
  /** Whether calls may go to the endpoint now. */
  available(): boolean;
  status(): EndpointHealthStatus;
  /**
   * Reports a broken connection (a call failed with one, or the server sent GOAWAY): the
   * endpoint leaves the rotation until a new connection works.
   */
  connectionFailed(reason: string): void;
  /** Stops watching and reconnecting. */
  close(): void;
}

const probeTimeoutMs = 10_000;

/**
 * Tracks whether one endpoint can take calls: from broken connections that calls report (it then
 * checks with `probe`, with backoff, when the endpoint can be reached again, as a gRPC
 * subchannel reconnects), and from the endpoint's own grpc.health.v1 Watch stream if `watch` is
 * set. Its timers never keep the process alive.
 */
export function createEndpointHealth(options: EndpointHealthOptions): EndpointHealth {
  const initialMs = options.initialBackoffMs ?? 1000;
  const maxMs = options.maxBackoffMs ?? 10_000;
  const random = options.random ?? Math.random;
  const lifetime = new AbortController();
  let connectivity: Connectivity = "idle";
  let health: HealthState = "unknown";
  let connectionReason = "";
  let healthReason = "";
  let reconnecting = false;

  const backoff = (failures: number) =>
    Math.min(maxMs, initialMs * 1.6 ** failures) * (0.8 + 0.4 * random());

  const reconnect = async () => {
    reconnecting = true;
    try {
      for (let failures = 0; !lifetime.signal.aborted; failures++) {
        if (options.probe === undefined) {
          connectivity = "transient_failure";
          await pause(backoff(failures), lifetime.signal);
          connectivity = "idle";
          return;
        }
        connectivity = "connecting";
        if (await withTimeout(options.probe(), probeTimeoutMs)) {
          connectivity = "ready";
          return;
        }
        connectivity = "transient_failure";
        await pause(backoff(failures), lifetime.signal);
      }
    } finally {
      reconnecting = false;
    }
  };

  const watch = async (watched: { transport: Transport; service: string }) => {
    const client = createClient(Health, watched.transport);
    for (let failures = 0; !lifetime.signal.aborted; failures++) {
      try {
        const updates = client.watch(
          { service: watched.service },
          { signal: lifetime.signal, timeoutMs: 0 },
        );
        for await (const { status } of updates) {
          failures = 0;
          const serving = status === HealthCheckResponse_ServingStatus.SERVING;
          health = serving ? "serving" : "not_serving";
          healthReason = serving ? "" : `health is ${statusName(status)} for "${watched.service}"`;
        }
        if (health !== "not_serving") health = "unchecked";
      } catch (err) {
        if (lifetime.signal.aborted) return;
        const e = ConnectError.from(err);
        if (e.code === Code.Unimplemented) {
          health = "unchecked";
          return;
        }
        if (e.code === Code.Unavailable || e.code === Code.Aborted) {
          health = "unreachable";
          healthReason = `health Watch failed: ${e.message}`;
          options.onUnreachable?.();
        } else if (health !== "not_serving") {
          health = "unchecked";
        }
      }
      await pause(backoff(failures), lifetime.signal);
    }
  };
  if (options.watch !== undefined) void watch(options.watch);

  const available = () =>
    (connectivity === "idle" || connectivity === "ready") &&
    health !== "not_serving" &&
    health !== "unreachable";

  return {
    available,
    status() {
      const status: EndpointHealthStatus = { connectivity, health };
      if (!available()) {
        const reasons = [];
        if (connectivity !== "idle" && connectivity !== "ready") reasons.push(connectionReason);
        if (health === "not_serving" || health === "unreachable") reasons.push(healthReason);
        status.reason = reasons.join("; ");
      }
      return status;
    },
    connectionFailed(reason) {
      if (lifetime.signal.aborted) return;
      connectionReason = reason;
      options.onUnreachable?.();
      if (!reconnecting) void reconnect();
    },
    close() {
      lifetime.abort();
    },
  };
}

function statusName(status: HealthCheckResponse_ServingStatus): string {
  return HealthCheckResponse_ServingStatusSchema.value[status]?.name ?? String(status);
}

/** Waits `ms` without keeping the process alive; resolves early when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    signal.addEventListener("abort", done);
  });
}

/** The promise's value, or false once `ms` has passed or if it rejects. */
function withTimeout(promise: Promise<boolean>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    timer.unref();
    promise.then(
      (ok) => {
        clearTimeout(timer);
        resolve(ok);
      },
      () => {
        clearTimeout(timer);
        resolve(false);
      },
    );
  });
}
