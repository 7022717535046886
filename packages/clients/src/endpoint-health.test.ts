import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createRouterTransport, type Transport } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponse_ServingStatus as Serving,
} from "@keel/gen/health/v1/health_pb";
import { createHealthService } from "@keel/observability";
import { createEndpointHealth } from "./endpoint-health.ts";

/** Waits until `condition` holds, checking every millisecond, for at most two seconds. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 2000;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await sleep(1);
  }
}

const fast = { initialBackoffMs: 1, maxBackoffMs: 5 };

describe("endpoint health", () => {
  it("without a connection check, leaves the rotation for the backoff after a failure", async () => {
    const health = createEndpointHealth({
      url: "http://a",
      initialBackoffMs: 30,
      maxBackoffMs: 30,
    });
    assert.equal(health.available(), true);
    health.connectionFailed("http://a: read ECONNRESET");
    assert.equal(health.available(), false, "at once, before any other call picks it");
    assert.deepEqual(health.status(), {
      connectivity: "transient_failure",
      health: "unknown",
      reason: "http://a: read ECONNRESET",
    });
    await until(() => health.available(), "it is back");
    assert.equal(health.status().connectivity, "idle");
  });

  it("reconnects with backoff until a connection works", async () => {
    let attempts = 0;
    const health = createEndpointHealth({
      url: "http://a",
      probe: async () => ++attempts >= 3,
      ...fast,
    });
    health.connectionFailed("http://a: connect ECONNREFUSED");
    health.connectionFailed("reported again by another call");
    assert.equal(health.status().connectivity, "connecting");
    await until(() => health.available(), "it is back");
    assert.equal(health.status().connectivity, "ready");
    assert.equal(attempts, 3);
  });

  it("follows the endpoint's health Watch", async () => {
    const status = createHealthService({ services: ["user.v1.UserService"] });
    const transport = createRouterTransport((router) => router.service(Health, status.service));
    const health = createEndpointHealth({
      url: "http://a",
      watch: { transport, service: "user.v1.UserService" },
      ...fast,
    });
    try {
      await until(() => health.status().health === "serving", "SERVING");
      status.setStatus("user.v1.UserService", Serving.NOT_SERVING);
      await until(() => !health.available(), "NOT_SERVING takes it out");
      assert.equal(health.status().reason, 'health is NOT_SERVING for "user.v1.UserService"');
      status.setStatus("user.v1.UserService", Serving.SERVING);
      await until(() => health.available(), "SERVING brings it back");
    } finally {
      health.close();
    }
    await until(() => status.watchers === 0, "close() ends the Watch");
  });

  it("takes a server without health checking as healthy", async () => {
    const transport = createRouterTransport(() => {});
    const health = createEndpointHealth({
      url: "http://a",
      watch: { transport, service: "" },
      ...fast,
    });
    await until(() => health.status().health === "unchecked", "UNIMPLEMENTED is seen");
    assert.equal(health.available(), true);
    health.close();
  });

  it("takes an endpoint whose Watch fails with UNAVAILABLE out until the Watch works again", async () => {
    const status = createHealthService();
    const working = createRouterTransport((router) => router.service(Health, status.service));
    let failures = 2;
    const transport: Transport = {
      unary: working.unary,
      stream(...args) {
        if (failures-- > 0)
          return Promise.reject(new ConnectError("connect ECONNREFUSED", Code.Unavailable));
        return working.stream(...args);
      },
    };
    const health = createEndpointHealth({
      url: "http://a",
      watch: { transport, service: "" },
      ...fast,
    });
    await until(() => health.status().health === "unreachable", "the Watch fails");
    assert.equal(health.available(), false);
    assert.match(
      health.status().reason ?? "",
      /health Watch failed: \[unavailable\] connect ECONNREFUSED/,
    );
    await until(() => health.status().health === "serving", "the Watch works again");
    assert.equal(health.available(), true);
    health.close();
  });
});
