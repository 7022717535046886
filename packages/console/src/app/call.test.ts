import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { UserActivitySchema, UserSchema, UserService } from "@keel/gen/user/v1/user_pb";
import { callMethod, codeName } from "./call.ts";

/** UserService in memory: GetUser knows user 1 and wants a token; activities stream until cancelled. */
const transport = createRouterTransport((router) =>
  router.service(UserService, {
    getUser(req, ctx) {
      if (ctx.requestHeader.get("authorization") !== "Bearer t0ken") {
        throw new ConnectError("no token", Code.Unauthenticated, { "x-request-id": "req-2" });
      }
      if (req.userId !== 1n) throw new ConnectError(`user ${req.userId} not found`, Code.NotFound);
      ctx.responseHeader.set("x-request-id", "req-1");
      return { user: create(UserSchema, { userId: 1n, username: "ada" }) };
    },
    async *streamUserActivities(req, ctx) {
      for (const action of ["user.created", "user.login"]) {
        yield create(UserActivitySchema, { userId: req.userId, action });
      }
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
    },
  }),
);

describe("callMethod", () => {
  it("calls a unary method with the token and answers its JSON, status, time and request id", async () => {
    const result = await callMethod({
      transport,
      method: UserService.method.getUser,
      request: '{"userId": "1"}',
      token: "t0ken",
    });
    assert.equal(result.status, "OK");
    assert.equal(result.sent, true);
    assert.deepEqual(result.messages, [{ user: { userId: "1", username: "ada" } }]);
    assert.equal(result.requestId, "req-1");
    assert.ok(result.elapsedMs >= 0 && result.elapsedMs < 5000);
  });

  it("reports an error's code name and message", async () => {
    const missing = await callMethod({
      transport,
      method: UserService.method.getUser,
      request: '{"user_id": 7}',
      token: "t0ken",
    });
    assert.equal(missing.status, "NOT_FOUND");
    assert.equal(missing.message, "user 7 not found");
    const anonymous = await callMethod({
      transport,
      method: UserService.method.getUser,
      request: '{"userId": "1"}',
    });
    assert.equal(anonymous.status, "UNAUTHENTICATED");
    assert.equal(anonymous.requestId, "req-2");
  });

  it("does not send a request that is not JSON or not the method's input", async () => {
    for (const request of ["{userId: 1}", '{"userName": "ada"}', '{"userId": "one"}']) {
      const result = await callMethod({ transport, method: UserService.method.getUser, request });
      assert.equal(result.sent, false, request);
      assert.equal(result.status, "NOT_SENT");
      assert.match(result.message, /^the request is not a valid user\.v1\.GetUserRequest: /);
    }
  });

  it("refuses client-streaming and bidi methods", async () => {
    for (const method of [UserService.method.batchUpdateUsers, UserService.method.syncUserStatus]) {
      const result = await callMethod({ transport, method, request: "{}" });
      assert.equal(result.sent, false);
      assert.match(result.message, /not callable from a browser/);
    }
  });

  it("hands over server-streamed messages as they arrive, until stopped", async () => {
    const stop = new AbortController();
    const seen: unknown[] = [];
    const result = await callMethod({
      transport,
      method: UserService.method.streamUserActivities,
      request: '{"userId": "3"}',
      signal: stop.signal,
      onMessage(message, index) {
        seen.push(message);
        if (index === 1) stop.abort();
      },
    });
    const expected = [
      { userId: "3", action: "user.created" },
      { userId: "3", action: "user.login" },
    ];
    assert.deepEqual(seen, expected);
    assert.deepEqual(result.messages, expected);
    assert.equal(result.status, "CANCELED");
  });
});

describe("codeName", () => {
  it("spells codes as gRPC does", () => {
    assert.equal(codeName(Code.NotFound), "NOT_FOUND");
    assert.equal(codeName(Code.DeadlineExceeded), "DEADLINE_EXCEEDED");
    assert.equal(codeName(Code.Unauthenticated), "UNAUTHENTICATED");
    assert.equal(codeName(Code.Canceled), "CANCELED");
  });
});
