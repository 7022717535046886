import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLoadSampler, type LoadSample } from "./load-sampler.ts";

describe("createLoadSampler", () => {
  it("sees a blocked event loop: delay, utilization and CPU, and reports memory", async () => {
    const sampler = createLoadSampler({ intervalMs: 50 });
    try {
      const next = () => new Promise<LoadSample>((resolve) => sampler.onSample(resolve));
      await next();
      // Real CPU work on the loop for 400 ms: the timer runs late and the loop is busy throughout.
      const until = performance.now() + 400;
      while (performance.now() < until) Math.sqrt(Math.random());
      const busy = await next();
      assert.ok(busy.eventLoopDelayMs > 50, `delay ${busy.eventLoopDelayMs} ms`);
      assert.ok(busy.eventLoopDelayP99Ms > 50, `p99 delay ${busy.eventLoopDelayP99Ms} ms`);
      assert.ok(busy.eventLoopUtilization > 0.5, `utilization ${busy.eventLoopUtilization}`);
      // CPU time depends on how much of a core the machine gave (shared, it can be little): the
      // loop's own utilization, in wall-clock time, does not.
      assert.ok(busy.cpuUtilization > 0, `CPU ${busy.cpuUtilization}`);
      assert.ok(busy.heapUsedBytes > 0 && busy.rssBytes >= busy.heapUsedBytes);
      assert.deepEqual(sampler.latest, busy);
    } finally {
      sampler.stop();
    }
  });

  it("tells a listener no more once it is removed", async () => {
    const sampler = createLoadSampler({ intervalMs: 20 });
    try {
      let told = 0;
      const remove = sampler.onSample(() => told++);
      const next = () => new Promise<LoadSample>((resolve) => sampler.onSample(resolve));
      await next();
      assert.equal(told, 1);
      remove();
      await next();
      await next();
      assert.equal(told, 1);
    } finally {
      sampler.stop();
    }
  });
});
