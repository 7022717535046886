import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { ByteBudget } from "./byte-budget.ts";
import { Call } from "./call.ts";
import { RequestBody } from "./request-body.ts";

const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

describe("RequestBody", () => {
  // A call can end before its body is read: a deadline below a millisecond ("1n"), a client gone
  // during the request gate, a shutdown. Its idle timer would hold the call for 30 s.
  it("arms no idle timer for a call that has already ended, and fails with its reason", async () => {
    const call = new Call("grpc", undefined);
    call.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
    const budget = new ByteBudget("this connection", 1024);
    const before = timers();
    const body = new RequestBody(new PassThrough(), call, {
      readMaxBytes: 1024,
      budget,
      idleTimeoutMs: 30_000,
    });
    assert.equal(timers(), before, "an idle timer is left armed");
    await assert.rejects(body.all(), /the operation timed out/);
  });

  it("arms its idle timer while the body is incomplete, and clears it at the end", async () => {
    const call = new Call("grpc", undefined);
    const source = new PassThrough();
    const before = timers();
    const body = new RequestBody(source, call, {
      readMaxBytes: 1024,
      budget: new ByteBudget("this connection", 1024),
      idleTimeoutMs: 30_000,
    });
    assert.equal(timers(), before + 1);
    source.end(Buffer.from([0, 0, 0, 0, 0]));
    assert.equal((await body.all()).length, 1);
    assert.equal(timers(), before);
  });
});
