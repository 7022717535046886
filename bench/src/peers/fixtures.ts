import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import {
  type GetUserResponse,
  GetUserResponseSchema,
  type UserActivity,
  UserActivitySchema,
  UserService,
  UserStatus,
} from "@keel/gen/user/v1/user_pb";

/**
 * What the bare peers answer: the same shapes our server answers for the user the benchmark
 * creates (see `keel-setup.ts`), so every peer serializes about the same bytes.
 */
const startedAt = timestampFromDate(new Date());

/**
 * GetUser's answer: the user our server stores after the benchmark's setup, built per call (as a
 * real handler builds it from a row) with the requested id.
 */
export function benchUserResponse(userId: bigint): GetUserResponse {
  return create(GetUserResponseSchema, {
    user: {
      userId,
      username: "bench",
      email: "bench@example.com",
      status: UserStatus.ACTIVE,
      createdAt: startedAt,
      updatedAt: startedAt,
      tags: ["bench"],
      metadata: {},
    },
  });
}

/** The `n`-th message of StreamUserActivities: an update of user 1's tags. */
export function benchActivity(n: number): UserActivity {
  return create(UserActivitySchema, {
    activityId: BigInt(n),
    userId: 1n,
    action: "user.updated",
    timestamp: startedAt,
    details: { fields: "tags" },
  });
}

/** How many messages a peer's StreamUserActivities sends before it ends. */
export const defaultStreamMessages = 100;

/** The port from the command line (`node peer.ts PORT`), 0 when absent: pick a free one. */
export function portArgument(argv: readonly string[]): number {
  const port = Number(argv[2] ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`usage: node peer.ts [PORT]; ${JSON.stringify(argv[2])} is not a port`);
  }
  return port;
}

/** The bare peers' routes: GetUser's fixed user, StreamUserActivities' fixed activities. */
export function benchRoutes(router: ConnectRouter): void {
  router.service(UserService, {
    getUser: (req) => benchUserResponse(req.userId),
    async *streamUserActivities() {
      for (let n = 1; n <= defaultStreamMessages; n++) yield benchActivity(n);
    },
  });
}
