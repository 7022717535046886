import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  type UpdateUserRequest,
  UpdateUserRequestSchema,
  UserSchema,
  type UserService,
  UserStatus,
  type UserStatusUpdate,
  UserStatusUpdateSchema,
} from "@keel/gen/user/v1/user_pb";
import { validateMessage } from "@keel/interceptors";
import type { StatusEvent, Store, UserPatch } from "@keel/store";
import type { AccountGuard } from "./account-guard.ts";
import { shuttingDown } from "./errors.ts";
import { applyEach } from "./partial-apply.ts";
import { userNotFound } from "./user-handlers.ts";
import { toActivity } from "./user-mapping.ts";
import { updatedFields, userRequestSchemas } from "./user-schemas.ts";

type Handlers = Pick<
  ServiceImpl<typeof UserService>,
  "streamUserActivities" | "batchUpdateUsers" | "syncUserStatus"
>;

const historyPageSize = 500;
const maxFollowedUsers = 10_000;

/** StreamUserActivities, BatchUpdateUsers and SyncUserStatus. */
export function createUserStreamHandlers(
  store: Store,
  accounts?: Pick<AccountGuard, "forget">,
): Handlers {
  return {
    async *streamUserActivities(req, ctx) {
      if ((await store.users.get(req.userId)) === undefined) throw userNotFound(req.userId);
      // Subscribe before reading the history, so nothing recorded in between is missed; what
      // arrives twice is skipped by id.
      const live = store.events.activities(req.userId, { signal: ctx.signal });
      try {
        const since = req.since === undefined ? undefined : timestampDate(req.since);
        let lastId = 0n;
        for (;;) {
          const page = await store.activities.list(req.userId, {
            limit: historyPageSize,
            afterId: lastId,
            ...(since === undefined ? {} : { since }),
          });
          for (const activity of page) {
            yield toActivity(activity);
            lastId = activity.id;
          }
          if (page.length < historyPageSize) break;
        }
        for await (const activity of live) {
          if (activity.id <= lastId) continue;
          lastId = activity.id;
          yield toActivity(activity);
        }
        // The feed never ends by itself: the call was cancelled, timed out or the server stops.
        ctx.signal.throwIfAborted();
        throw shuttingDown();
      } finally {
        live.close();
      }
    },

    async batchUpdateUsers(requests) {
      const { applied, errors } = await applyEach(
        requests,
        (req, n) => `update #${n} (user_id=${req.userId})`,
        async (req) => {
          // Validated here, update by update, so that one bad update does not end the batch.
          validateMessage(
            UpdateUserRequestSchema,
            userRequestSchemas["user.v1.UpdateUserRequest"],
            req,
          );
          const patch = toPatch(req);
          await store.users.update(req.userId, patch);
          if (patch.status !== undefined) accounts?.forget(req.userId);
        },
      );
      return { updatedCount: applied, errors };
    },

    async *syncUserStatus(requests, ctx) {
      const origin = randomUUID();
      const feed = store.events.statuses({ origin, signal: ctx.signal });
      let followed = 0;
      let clientDone = false;
      const lastSent = new Map<bigint, Date>();
      // Requests are read concurrently with the responses being written: follows and updates go
      // in, status changes of followed users come out. A bad request ends the stream with its error.
      const reader = async () => {
        for await (const req of requests) {
          if (req.status === UserStatus.UNSPECIFIED) {
            if (++followed > maxFollowedUsers) {
              throw new ConnectError(
                `a stream follows at most ${maxFollowedUsers} users; open another stream`,
                Code.ResourceExhausted,
              );
            }
            feed.follow(req.userId);
            const user = await store.users.get(req.userId);
            if (user === undefined) throw userNotFound(req.userId);
            feed.push({
              userId: user.id,
              status: user.status,
              at: user.updatedAt,
              origin: undefined,
            });
          } else {
            await store.users.update(req.userId, { status: req.status }, origin);
            accounts?.forget(req.userId);
          }
        }
        // The client closed its side: what is buffered is still sent, then the stream ends.
        clientDone = true;
        feed.close();
      };
      reader().catch((err: unknown) => feed.fail(err));
      try {
        for await (const event of feed) {
          // With several instances, a change committed just before the follow may arrive after the
          // snapshot that already includes it: never send a status older than what was sent.
          const sent = lastSent.get(event.userId);
          if (sent !== undefined && event.at < sent) continue;
          lastSent.set(event.userId, event.at);
          yield toStatusUpdate(event);
        }
        if (!clientDone) {
          // Not the client's doing: the call was cancelled, timed out or the server stops.
          ctx.signal.throwIfAborted();
          throw shuttingDown();
        }
      } finally {
        feed.close();
      }
    },
  };
}

/** The store patch of a validated update: the fields its mask lists, or else those it sets. */
function toPatch(req: UpdateUserRequest): UserPatch {
  const user = req.user ?? create(UserSchema);
  const patch: UserPatch = {};
  for (const field of updatedFields(req)) {
    switch (field) {
      case "username":
        patch.username = user.username;
        break;
      case "email":
        patch.email = user.email;
        break;
      case "status":
        patch.status = user.status;
        break;
      case "tags":
        patch.tags = user.tags;
        break;
      case "metadata":
        patch.metadata = user.metadata;
        break;
    }
  }
  return patch;
}

function toStatusUpdate(event: StatusEvent): UserStatusUpdate {
  return create(UserStatusUpdateSchema, {
    userId: event.userId,
    status: event.status,
    timestamp: timestampFromDate(event.at),
  });
}
