import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HealthCheckResponse_ServingStatus as Serving } from "@keel/gen/health/v1/health_pb";
import { createHealthService } from "@keel/observability";
import { createHealthConditions } from "./health-conditions.ts";

describe("createHealthConditions", () => {
  it("serves only while every condition is met: one clearing does not hide another", () => {
    const health = createHealthService({ services: ["user.v1.UserService"] });
    const conditions = createHealthConditions(health);
    conditions.set("database", false);
    conditions.set("memory", false);
    assert.equal(health.status(""), Serving.NOT_SERVING);
    conditions.set("database", true);
    assert.equal(health.status("user.v1.UserService"), Serving.NOT_SERVING);
    assert.deepEqual([...conditions.failing], ["memory"]);
    conditions.set("memory", true);
    assert.equal(health.status(""), Serving.SERVING);
    assert.equal(health.status("user.v1.UserService"), Serving.SERVING);
    // After shutdown, nothing brings it back.
    conditions.set("load", false);
    health.shutdown();
    conditions.set("load", true);
    assert.equal(health.status(""), Serving.NOT_SERVING);
  });
});
