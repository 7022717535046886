import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { type Call, runLoad } from "./load-generator.ts";

/** A call that ends after a turn of the event loop, failing every `failEvery`th time. */
function fakeCall(failEvery = 0): Call {
  let n = 0;
  return (done) => {
    n++;
    const fail = failEvery > 0 && n % failEvery === 0;
    setImmediate(done, fail ? Code.Unavailable : 0, fail ? "down" : "");
  };
}

describe("runLoad", () => {
  it("makes exactly --requests calls over all workers and counts them by status", async () => {
    const { progress, result } = runLoad({
      calls: [fakeCall(4), fakeCall(4), fakeCall(4)],
      requests: 301,
    });
    const { latencies, byCode, firstErrors, elapsedMs } = await result;
    assert.equal(latencies.count, 301);
    assert.equal(progress.completed, 301);
    assert.equal((byCode[0] as number) + (byCode[Code.Unavailable] as number), 301);
    assert.ok((byCode[Code.Unavailable] as number) > 0);
    assert.equal(firstErrors.get(Code.Unavailable), "down");
    assert.ok(elapsedMs > 0 && latencies.min >= 0);
  });

  it("stops starting calls once the duration has passed", async () => {
    const started = performance.now();
    const { result } = runLoad({ calls: [fakeCall(), fakeCall()], durationMs: 50 });
    const { latencies, elapsedMs } = await result;
    assert.ok(latencies.count > 10);
    assert.ok(elapsedMs >= 50 && performance.now() - started < 1000);
  });
});
