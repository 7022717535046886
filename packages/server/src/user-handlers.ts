import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { type UserService, UserStatus } from "@keel/gen/user/v1/user_pb";
import { peerKey } from "@keel/interceptors";
import type { Store } from "@keel/store";
import { decodePageToken, encodePageToken, resolvePageSize } from "./page-token.ts";
import type { HashCaller, PasswordHasher } from "./passwords.ts";
import { pickUserFields, resolveUserFields, toUser } from "./user-mapping.ts";

type Handlers = Pick<ServiceImpl<typeof UserService>, "getUser" | "createUser" | "listUsers">;

/** GetUser, CreateUser and ListUsers. */
export function createUserHandlers(store: Store, passwords: PasswordHasher): Handlers {
  return {
    async getUser(req) {
      const fields = resolveUserFields(req.fields);
      const record = await store.users.get(req.userId);
      if (record === undefined) throw userNotFound(req.userId);
      return { user: pickUserFields(toUser(record), fields) };
    },

    async createUser(req, ctx) {
      // A taken name costs a lookup, not a password hash.
      await store.users.checkAvailable(req.username, req.email);
      const record = await store.users.create({
        username: req.username,
        email: req.email,
        status: UserStatus.ACTIVE,
        tags: req.tags,
        passwordHash: await passwords.hash(req.password, hashCaller(ctx)),
      });
      return { user: toUser(record) };
    },

    async listUsers(req) {
      const limit = resolvePageSize(req.pageSize);
      const filter = `status=${req.status}`;
      const afterId = decodePageToken(req.pageToken, filter);
      const records = await store.users.list({
        limit: limit + 1,
        ...(afterId === undefined ? {} : { afterId }),
        ...(req.status === UserStatus.UNSPECIFIED ? {} : { status: req.status }),
      });
      const page = records.slice(0, limit);
      const last = page.at(-1);
      return {
        users: page.map(toUser),
        nextPageToken:
          records.length > limit && last !== undefined ? encodePageToken(last.id, filter) : "",
      };
    },
  };
}

/** Whose share of password hashing a call takes: its client address's. */
export function hashCaller(ctx: HandlerContext): HashCaller {
  return { caller: ctx.values.get(peerKey), signal: ctx.signal };
}

export function userNotFound(userId: bigint): ConnectError {
  return new ConnectError(`user ${userId} not found`, Code.NotFound);
}
