import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { UserService, UserStatus } from "@keel/gen/user/v1/user_pb";
import { type RunningTarget, startPeer } from "../targets.ts";
import { defaultStreamMessages } from "./fixtures.ts";

for (const script of ["engine-peer.ts", "grpc-js-peer.ts", "connect-peer.ts"] as const) {
  describe(script, () => {
    let peer: RunningTarget;
    before(async () => {
      peer = await startPeer(script, { cpu: undefined, logFile: "/dev/null" });
    });
    after(() => peer.stop());
    const client = () =>
      createClient(UserService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${peer.port}` }));

    it("answers GetUser with the benchmark's user", async () => {
      const { user } = await client().getUser({ userId: 7n });
      assert.equal(user?.userId, 7n);
      assert.equal(user?.username, "bench");
      assert.equal(user?.status, UserStatus.ACTIVE);
      assert.deepEqual(user?.tags, ["bench"]);
    });

    it("streams the fixed number of activities, then ends", async () => {
      let count = 0;
      for await (const activity of client().streamUserActivities({ userId: 1n })) {
        count++;
        assert.equal(activity.activityId, BigInt(count));
      }
      assert.equal(count, defaultStreamMessages);
    });
  });
}
