import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { type CircuitBreaker, createCircuitBreaker } from "./circuit-breaker.ts";

/** Lets `n` calls through and records `code` for each. */
function calls(breaker: CircuitBreaker, n: number, code: Code | undefined) {
  for (let i = 0; i < n; i++) {
    const permit = breaker.acquire();
    assert.ok(permit, `call ${i} was refused`);
    permit(code);
  }
}

function breakerWithClock() {
  const clock = { now: 0 };
  const breaker = createCircuitBreaker({
    failureRate: 0.5,
    minimumRequests: 10,
    windowMs: 10_000,
    openMs: 1000,
    now: () => clock.now,
  });
  return { clock, breaker };
}

describe("circuit breaker", () => {
  it("opens once the window holds enough calls and the failure rate is reached", () => {
    const { breaker } = breakerWithClock();
    calls(breaker, 9, Code.Unavailable);
    assert.equal(breaker.state(), "closed", "fewer calls than minimumRequests");
    calls(breaker, 1, undefined);
    assert.equal(breaker.state(), "open", "9 of 10 failed");
    assert.equal(breaker.allows(), false);
    assert.equal(breaker.acquire(), undefined);
  });

  it("stays closed below the failure rate, and counts answers such as NOT_FOUND as successes", () => {
    const { breaker } = breakerWithClock();
    calls(breaker, 6, Code.NotFound);
    calls(breaker, 5, Code.Internal);
    assert.equal(breaker.state(), "closed", "5 of 11 failed");
    calls(breaker, 20, Code.Canceled);
    assert.equal(breaker.state(), "closed", "cancelled calls are not counted");
  });

  it("forgets failures that left the window", () => {
    const { clock, breaker } = breakerWithClock();
    calls(breaker, 9, Code.Unavailable);
    clock.now += 11_000;
    calls(breaker, 1, Code.Unavailable);
    assert.equal(breaker.state(), "closed");
  });

  it("lets one probe through after openMs: its success closes the circuit", () => {
    const { clock, breaker } = breakerWithClock();
    calls(breaker, 10, Code.Unavailable);
    clock.now += 999;
    assert.equal(breaker.state(), "open");
    clock.now += 1;
    assert.equal(breaker.state(), "half_open");
    const probe = breaker.acquire();
    assert.ok(probe);
    assert.equal(breaker.acquire(), undefined, "one probe at a time");
    assert.equal(breaker.allows(), false);
    probe(undefined);
    assert.equal(breaker.state(), "closed");
    calls(breaker, 9, Code.Unavailable);
    assert.equal(breaker.state(), "closed", "the window started afresh");
  });

  it("opens again when the probe fails, and lets another probe through when it is cancelled", () => {
    const { clock, breaker } = breakerWithClock();
    calls(breaker, 10, Code.Unavailable);
    clock.now += 1000;
    breaker.acquire()?.(Code.Canceled);
    assert.equal(breaker.state(), "half_open");
    breaker.acquire()?.(Code.DeadlineExceeded);
    assert.equal(breaker.state(), "open");
    clock.now += 1000;
    assert.equal(breaker.state(), "half_open");
  });

  it("ignores outcomes of calls let through before the state changed, and double records", () => {
    const { clock, breaker } = breakerWithClock();
    const late = breaker.acquire();
    calls(breaker, 10, Code.Unavailable);
    clock.now += 1000;
    const probe = breaker.acquire();
    late?.(undefined);
    assert.equal(breaker.state(), "half_open", "an old call's success is not the probe's");
    probe?.(undefined);
    probe?.(Code.Unavailable);
    assert.equal(breaker.state(), "closed");
  });

  it("takes the failure codes it is given", () => {
    const breaker = createCircuitBreaker({ minimumRequests: 2, failureCodes: [Code.NotFound] });
    calls(breaker, 2, Code.Unavailable);
    assert.equal(breaker.state(), "closed");
    calls(breaker, 2, Code.NotFound);
    assert.equal(breaker.state(), "open");
  });

  it("refuses a failure rate outside (0, 1]", () => {
    assert.throws(() => createCircuitBreaker({ failureRate: 0 }), RangeError);
  });
});
