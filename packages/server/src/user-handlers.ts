import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { type UserService, UserStatus } from "@keel/gen/user/v1/user_pb";
import type { Store } from "@keel/store";
import { decodePageToken, encodePageToken, resolvePageSize } from "./page-token.ts";
import type { PasswordHasher } from "./passwords.ts";
import { pickUserFields, resolveUserFields, toUser } from "./user-mapping.ts";
import { checkEmail, checkPassword, checkTags, checkUserId, checkUsername } from "./user-rules.ts";
import { Violations } from "./violations.ts";

type Handlers = Pick<ServiceImpl<typeof UserService>, "getUser" | "createUser" | "listUsers">;

/** GetUser, CreateUser and ListUsers. */
export function createUserHandlers(store: Store, passwords: PasswordHasher): Handlers {
  return {
    async getUser(req) {
      const v = new Violations();
      checkUserId(v, "user_id", req.userId);
      const fields = resolveUserFields(v, req.fields);
      v.throwIfAny();
      const record = await store.users.get(req.userId);
      if (record === undefined) throw userNotFound(req.userId);
      return { user: pickUserFields(toUser(record), fields) };
    },

    async createUser(req) {
      const v = new Violations();
      checkUsername(v, "username", req.username);
      checkEmail(v, "email", req.email);
      checkPassword(v, "password", req.password);
      checkTags(v, "tags", req.tags);
      v.throwIfAny();
      const record = await store.users.create({
        username: req.username,
        email: req.email,
        status: UserStatus.ACTIVE,
        tags: req.tags,
        passwordHash: await passwords.hash(req.password),
      });
      return { user: toUser(record) };
    },

    async listUsers(req) {
      const v = new Violations();
      const limit = resolvePageSize(v, req.pageSize);
      if (req.status !== UserStatus.UNSPECIFIED && !isKnownStatus(req.status)) {
        v.add("status", "unknown status");
      }
      v.throwIfAny();
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

export function userNotFound(userId: bigint): ConnectError {
  return new ConnectError(`user ${userId} not found`, Code.NotFound);
}

export function isKnownStatus(status: number): status is UserStatus {
  return (
    status === UserStatus.ACTIVE ||
    status === UserStatus.INACTIVE ||
    status === UserStatus.SUSPENDED
  );
}
