import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { RetryInfoSchema } from "@keel/gen/errdetails/v1/errdetails_pb";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { createLoadShedder, type ShedReason, type ShedState } from "./load-shedder.ts";
import { createMemoryWatchdog, type MemoryLevel } from "./memory-watchdog.ts";
import { handSampler } from "./testing/hand-sampler.ts";

/** How many of `n` calls of `service` are refused. */
function refusals(
  check: (service: string) => ConnectError | undefined,
  n: number,
  service = "user.v1.UserService",
) {
  let refused = 0;
  for (let i = 0; i < n; i++) if (check(service) !== undefined) refused++;
  return refused;
}

describe("createLoadShedder", () => {
  it("sheds only after overload has lasted overloadForMs, and stops after recoverForMs below", () => {
    const { sampler, feed } = handSampler();
    const changes: ShedState[] = [];
    const shedder = createLoadShedder({
      sampler,
      eventLoopDelayMs: 50,
      overloadForMs: 500,
      recoverForMs: 1000,
      onChange: (state) => changes.push({ ...state }),
    });
    feed({ eventLoopDelayMs: 200 }, 4);
    assert.equal(shedder.state.shedding, false, "400 ms of overload is not enough");
    assert.equal(refusals(shedder.check, 100), 0);
    feed({ eventLoopDelayMs: 200 });
    assert.equal(shedder.state.shedding, true);
    assert.equal(shedder.state.reason, "event_loop_delay");
    assert.ok(shedder.state.probability > 0);
    // Below the threshold for 900 ms: still shedding (a falling share), then it stops.
    feed({ eventLoopDelayMs: 10 }, 9);
    assert.equal(shedder.state.shedding, true);
    feed({ eventLoopDelayMs: 10 });
    assert.deepEqual(shedder.state, { shedding: false, reason: undefined, probability: 0 });
    assert.deepEqual(
      changes.map((c) => c.shedding),
      [true, false],
      "told once per transition, not per sample",
    );
  });

  it("refuses a share of calls that follows the overload, rather than all or none", () => {
    const { sampler, feed } = handSampler();
    const shedder = createLoadShedder({
      sampler,
      eventLoopUtilization: 0.5,
      eventLoopDelayMs: 0,
      overloadForMs: 0,
    });
    // Twice the threshold: the share rises by gain × (2 − 1) per second, 0.1 a sample.
    feed({ eventLoopUtilization: 1 }, 3);
    assert.ok(Math.abs(shedder.state.probability - 0.3) < 1e-9, `${shedder.state.probability}`);
    const some = refusals(shedder.check, 10_000);
    assert.ok(some > 2500 && some < 3500, `${some} of 10000 refused at a share of 0.3`);
    feed({ eventLoopUtilization: 1 }, 20);
    assert.equal(shedder.state.probability, 1, "capped at every call");
    // At three quarters of the threshold the share falls by 0.025 a sample.
    feed({ eventLoopUtilization: 0.375 }, 4);
    assert.ok(Math.abs(shedder.state.probability - 0.9) < 1e-9, `${shedder.state.probability}`);
    assert.equal(shedder.state.reason, "event_loop_utilization");
  });

  it("refuses with RESOURCE_EXHAUSTED, a RetryInfo delay and retry-after; health passes", async () => {
    const { sampler, feed } = handSampler();
    const shed: ShedReason[] = [];
    const shedder = createLoadShedder({
      sampler,
      eventLoopDelayMs: 10,
      overloadForMs: 0,
      retryAfterMs: 2500,
      onShed: (reason) => shed.push(reason),
    });
    feed({ eventLoopDelayMs: 1000 }, 3);
    assert.equal(shedder.state.probability, 1);
    assert.equal(refusals(shedder.check, 10, "grpc.health.v1.Health"), 0);
    let reached = 0;
    const transport = createRouterTransport(
      ({ service }) => {
        service(UserService, {
          getUser() {
            reached++;
            return {};
          },
        });
      },
      { router: { interceptors: [shedder.interceptor] } },
    );
    const err = await createClient(UserService, transport)
      .getUser({ userId: 1n })
      .then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
    assert.equal(err?.code, Code.ResourceExhausted);
    assert.equal(reached, 0, "the handler never ran");
    assert.match(err?.rawMessage ?? "", /overloaded \(event-loop delay\).*retry after 2500 ms/);
    const [info] = err?.findDetails(RetryInfoSchema) ?? [];
    assert.equal(info?.retryDelay?.seconds, 2n);
    assert.equal(info?.retryDelay?.nanos, 500_000_000);
    assert.equal(err?.metadata.get("retry-after"), "3");
    assert.deepEqual(shed, ["event_loop_delay"]);
  });

  it("refuses every call above a memory soft limit, until memory has stayed below it", () => {
    const { sampler, feed } = handSampler();
    const levels: MemoryLevel[] = [];
    const memory = createMemoryWatchdog({
      sampler,
      heap: { soft: 100, hard: 200 },
      rss: { soft: 1000 },
      recoverForMs: 300,
      onChange: (level) => levels.push(level),
    });
    const shedder = createLoadShedder({ sampler, memory });
    feed({ heapUsedBytes: 50, rssBytes: 500 });
    assert.equal(memory.level, "ok");
    assert.equal(refusals(shedder.check, 100), 0);
    feed({ heapUsedBytes: 150 });
    assert.equal(memory.level, "soft");
    assert.deepEqual(shedder.state, { shedding: true, reason: "memory", probability: 1 });
    assert.equal(refusals(shedder.check, 100), 100);
    assert.equal(refusals(shedder.check, 100, "grpc.health.v1.Health"), 0);
    feed({ heapUsedBytes: 250 });
    assert.equal(memory.level, "hard");
    feed({ heapUsedBytes: 50, rssBytes: 1500 });
    assert.equal(memory.level, "hard", "the level is left only after recoverForMs");
    feed({}, 2);
    assert.equal(memory.level, "soft", "RSS is still above its soft limit");
    feed({ rssBytes: 10 }, 3);
    assert.equal(memory.level, "ok");
    assert.equal(shedder.state.shedding, false);
    assert.equal(refusals(shedder.check, 100), 0);
    assert.deepEqual(levels, ["soft", "hard", "soft", "ok"]);
  });

  it("refuses calls that arrive at the end of a long busy stretch, before the next sample", () => {
    const { sampler, feed, stall } = handSampler();
    const shed: ShedReason[] = [];
    const shedder = createLoadShedder({
      sampler,
      eventLoopDelayMs: 50,
      overloadForMs: 500,
      onShed: (reason) => shed.push(reason),
    });
    feed({ eventLoopDelayMs: 1 });
    stall(400);
    assert.equal(
      refusals(shedder.check, 100),
      0,
      "not shedding: a stall shorter than 500 ms passes",
    );
    stall(600);
    assert.equal(refusals(shedder.check, 100), 100);
    assert.equal(refusals(shedder.check, 10, "grpc.health.v1.Health"), 0);
    feed({ eventLoopDelayMs: 1 });
    assert.equal(refusals(shedder.check, 100), 0, "the timer ran again: the stall is over");
    // While shedding, a stall past the delay threshold is enough.
    feed({ eventLoopDelayMs: 100 }, 5);
    assert.equal(shedder.state.shedding, true);
    feed({ eventLoopDelayMs: 40 }, 15);
    assert.deepEqual([shedder.state.shedding, shedder.state.probability], [true, 0]);
    stall(60);
    assert.equal(refusals(shedder.check, 100), 100);
    assert.deepEqual(new Set(shed), new Set(["event_loop_delay"]));
  });
});
