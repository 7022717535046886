import { HealthCheckResponse_ServingStatus as Serving } from "@keel/gen/health/v1/health_pb";
import type { HealthStatus } from "@keel/observability";

/** Things that each can take the server out of service, reported separately. */
export interface HealthConditions {
  /** Records whether `name` (the database, memory, load) allows serving; health follows. */
  set(name: string, ok: boolean): void;
  /** The conditions not met now, by name. */
  readonly failing: ReadonlySet<string>;
}

/**
 * Health from several conditions: every service reports SERVING while all of them are met and
 * NOT_SERVING while any is not, so that one condition clearing does not hide another.
 */
export function createHealthConditions(health: Pick<HealthStatus, "setAll">): HealthConditions {
  const failing = new Set<string>();
  return {
    failing,
    set(name, ok) {
      const before = failing.size;
      if (ok) failing.delete(name);
      else failing.add(name);
      if ((before === 0) !== (failing.size === 0)) {
        health.setAll(failing.size === 0 ? Serving.SERVING : Serving.NOT_SERVING);
      }
    },
  };
}
