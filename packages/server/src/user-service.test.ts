import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectError } from "@connectrpc/connect";
import { createUserClient, type Protocol, type UserClient } from "@keel/clients";
import {
  type UpdateUserRequestSchema,
  type UserActivity,
  UserStatus,
  type UserStatusUpdateSchema,
} from "@keel/gen/user/v1/user_pb";

type StatusUpdateInit = MessageInitShape<typeof UserStatusUpdateSchema>;

import { iterate, pushable, rejectsWith, take } from "./testing/rpc.ts";
import { startTestServer } from "./testing/test-server.ts";

const protocols: Protocol[] = ["grpc", "grpc-web", "connect"];
const password = "correct horse battery";

let server: Awaited<ReturnType<typeof startTestServer>>;
before(async () => {
  server = await startTestServer();
});
after(() => server.stop());

for (const protocol of protocols) {
  describe(`UserService over ${protocol}`, () => {
    let client: UserClient;
    let seq = 0;
    const name = (label: string) => `${protocol.replace("-", "")}_${label}_${++seq}`;
    const createUser = async (label: string, tags: string[] = []) => {
      const username = name(label);
      const { user } = await client.createUser({
        username,
        email: `${username}@example.com`,
        password,
        tags,
      });
      assert.ok(user);
      return user;
    };

    before(() => {
      client = createUserClient({ baseUrl: server.url, protocol, token: server.adminToken });
    });

    it("creates a user and gets it back", async () => {
      const created = await createUser("alice", ["admin", "beta"]);
      assert.ok(created.userId > 0n);
      assert.equal(created.status, UserStatus.ACTIVE);
      assert.deepEqual(created.tags, ["admin", "beta"]);
      assert.ok(created.createdAt && created.updatedAt);
      const { user } = await client.getUser({ userId: created.userId });
      assert.deepEqual(user, created);
    });

    it("returns only the requested fields, by proto or JSON name", async () => {
      const created = await createUser("fields");
      const { user } = await client.getUser({
        userId: created.userId,
        fields: ["username", "createdAt"],
      });
      assert.equal(user?.username, created.username);
      assert.deepEqual(user?.createdAt, created.createdAt);
      assert.equal(user?.email, "");
      assert.equal(user?.userId, 0n);
      await rejectsWith(
        client.getUser({ userId: created.userId, fields: ["password_hash"] }),
        Code.InvalidArgument,
        /fields\[0\]: unknown user field "password_hash"/,
      );
    });

    it("answers NOT_FOUND for an unknown user and INVALID_ARGUMENT for a bad id", async () => {
      await rejectsWith(
        client.getUser({ userId: 987654321n }),
        Code.NotFound,
        /user 987654321 not found/,
      );
      await rejectsWith(
        client.getUser({ userId: 0n }),
        Code.InvalidArgument,
        /user_id: must be a positive/,
      );
      await rejectsWith(client.getUser({ userId: -5n }), Code.InvalidArgument, /user_id/);
    });

    it("refuses a duplicate username or email, in any letter case", async () => {
      const user = await createUser("dup");
      await rejectsWith(
        client.createUser({
          username: user.username.toUpperCase(),
          email: `other_${user.email}`,
          password,
        }),
        Code.AlreadyExists,
        /username/,
      );
      await rejectsWith(
        client.createUser({ username: name("other"), email: user.email.toUpperCase(), password }),
        Code.AlreadyExists,
        /email/,
      );
    });

    it("names every invalid field of a bad CreateUser", async () => {
      await rejectsWith(
        client.createUser({ username: "ab", email: "not-an-email", password: "short" }),
        Code.InvalidArgument,
        /username: .*; email: .*; password: must be 8 to 128 characters/,
      );
      await rejectsWith(
        client.createUser({ username: name("tags"), email: "t@example.com", password, tags: [""] }),
        Code.InvalidArgument,
        /tags\[0\]/,
      );
    });

    it("pages through users with an opaque token and a status filter", async () => {
      const mine = new Set<bigint>();
      for (let i = 0; i < 5; i++) mine.add((await createUser("page")).userId);
      const seen: bigint[] = [];
      let pageToken = "";
      let pages = 0;
      do {
        const page = await client.listUsers({ pageSize: 2, pageToken });
        assert.ok(page.users.length <= 2);
        seen.push(...page.users.map((u) => u.userId));
        pageToken = page.nextPageToken;
        pages++;
      } while (pageToken !== "" && pages < 1000);
      assert.deepEqual(
        [...seen].sort((a, b) => (a < b ? -1 : 1)),
        seen,
        "pages are in id order",
      );
      assert.equal(new Set(seen).size, seen.length, "no user appears twice");
      for (const id of mine) assert.ok(seen.includes(id));

      const suspendedId = [...mine][0] as bigint;
      const batch = await client.batchUpdateUsers(
        iterate([{ userId: suspendedId, user: { status: UserStatus.SUSPENDED } }]),
      );
      assert.equal(batch.updatedCount, 1);
      const suspended = await client.listUsers({ status: UserStatus.SUSPENDED, pageSize: 1000 });
      assert.ok(suspended.users.some((u) => u.userId === suspendedId));
      assert.ok(suspended.users.every((u) => u.status === UserStatus.SUSPENDED));

      const first = await client.listUsers({ pageSize: 1 });
      await rejectsWith(
        client.listUsers({
          pageSize: 1,
          pageToken: first.nextPageToken,
          status: UserStatus.ACTIVE,
        }),
        Code.InvalidArgument,
        /page_token: was issued for another filter/,
      );
      await rejectsWith(
        client.listUsers({ pageToken: "garbage!" }),
        Code.InvalidArgument,
        /page_token/,
      );
      await rejectsWith(client.listUsers({ pageSize: -1 }), Code.InvalidArgument, /page_size/);
    });

    it("logs in with the right password only, without saying which part was wrong", async () => {
      const user = await createUser("login");
      const ok = await client.login({ username: user.username, password });
      assert.equal(ok.tokenType, "Bearer");
      assert.equal(ok.userId, user.userId);
      assert.equal(ok.accessToken.split(".").length, 3);
      assert.ok(ok.accessTokenExpiresAt && ok.refreshTokenExpiresAt);
      let wrongPassword = "";
      let unknownUser = "";
      await rejectsWith(
        client.login({ username: user.username, password: "wrong password" }).catch((e) => {
          wrongPassword = (e as ConnectError).rawMessage;
          throw e;
        }),
        Code.Unauthenticated,
      );
      await rejectsWith(
        client.login({ username: name("nobody"), password }).catch((e) => {
          unknownUser = (e as ConnectError).rawMessage;
          throw e;
        }),
        Code.Unauthenticated,
      );
      assert.equal(wrongPassword, unknownUser);
      await rejectsWith(
        client.login({ username: "", password: "" }),
        Code.InvalidArgument,
        /username: required; password: required/,
      );
    });

    it("rotates refresh tokens and refuses a reused one, revoking its descendants", async () => {
      const user = await createUser("refresh");
      const first = await client.login({ username: user.username, password });
      const second = await client.refreshToken({ refreshToken: first.refreshToken });
      assert.equal(second.userId, user.userId);
      assert.notEqual(second.refreshToken, first.refreshToken);
      // Both logins' access tokens work until the reuse…
      const asFirst = createUserClient({ baseUrl: server.url, protocol, token: first.accessToken });
      const asSecond = createUserClient({
        baseUrl: server.url,
        protocol,
        token: second.accessToken,
      });
      await asFirst.getUser({ userId: user.userId });
      await asSecond.getUser({ userId: user.userId });
      await rejectsWith(
        client.refreshToken({ refreshToken: first.refreshToken }),
        Code.Unauthenticated,
        /already used; every session of that login is revoked/,
      );
      // …and not after it: the access tokens of the revoked login stop at once.
      for (const revoked of [asFirst, asSecond]) {
        await rejectsWith(
          revoked.getUser({ userId: user.userId }),
          Code.Unauthenticated,
          /^this login was revoked/,
        );
      }
      // A new login is not affected.
      const fresh = await client.login({ username: user.username, password });
      await createUserClient({ baseUrl: server.url, token: fresh.accessToken }).getUser({
        userId: user.userId,
      });
      // The reuse revoked the whole family, including the token the legitimate holder has now.
      await rejectsWith(
        client.refreshToken({ refreshToken: second.refreshToken }),
        Code.Unauthenticated,
      );
      await rejectsWith(
        client.refreshToken({ refreshToken: first.accessToken }),
        Code.Unauthenticated,
      );
      await rejectsWith(client.refreshToken({ refreshToken: "a.b.c" }), Code.Unauthenticated);
      await rejectsWith(
        client.refreshToken({ refreshToken: "" }),
        Code.InvalidArgument,
        /refresh_token/,
      );
    });

    it("streams recorded activities, then live ones, until the client cancels", async () => {
      const user = await createUser("activity");
      await client.login({ username: user.username, password });
      const controller = new AbortController();
      const stream = client.streamUserActivities(
        { userId: user.userId, since: timestampFromDate(new Date(Date.now() - 60_000)) },
        { signal: controller.signal, timeoutMs: 0 },
      );
      const iterator = stream[Symbol.asyncIterator]();
      const history = await take<UserActivity>(iterator, 2);
      assert.deepEqual(
        history.map((a) => a.action),
        ["user.created", "user.login"],
      );
      assert.ok(history.every((a) => a.userId === user.userId));
      await client.batchUpdateUsers(
        iterate([{ userId: user.userId, user: { email: `new_${user.email}` } }]),
      );
      const [live] = await take<UserActivity>(iterator, 1);
      assert.equal(live?.action, "user.updated");
      assert.equal(live?.details.fields, "email");
      assert.ok((live?.activityId ?? 0n) > (history[1]?.activityId ?? 0n));
      controller.abort();
      await rejectsWith(iterator.next(), Code.Canceled);
      // Nothing recorded before `since` comes back.
      const later = client.streamUserActivities(
        { userId: user.userId, since: timestampFromDate(new Date(Date.now() + 60_000)) },
        { timeoutMs: 300 },
      );
      const received: UserActivity[] = [];
      await rejectsWith(
        (async () => {
          for await (const a of later) received.push(a);
        })(),
        Code.DeadlineExceeded,
      );
      assert.deepEqual(received, []);
      await rejectsWith(
        take(client.streamUserActivities({ userId: 424242424n })[Symbol.asyncIterator](), 1),
        Code.NotFound,
      );
    });

    it("applies the valid updates of a batch and names each failure", async () => {
      const a = await createUser("batch");
      const b = await createUser("batch");
      const updates: MessageInitShape<typeof UpdateUserRequestSchema>[] = [
        { userId: a.userId, user: { tags: ["x"], metadata: { team: "core" } } },
        { userId: 99999999n, user: { email: "ghost@example.com" } },
        { userId: b.userId, user: { email: "not-an-email" } },
        { userId: b.userId, user: { email: a.email } },
        {
          userId: b.userId,
          user: { username: `${b.username}_renamed` },
          updateMask: { paths: ["username"] },
        },
        { userId: b.userId, user: { tags: [] }, updateMask: { paths: ["created_at"] } },
        { userId: a.userId, user: {} },
      ];
      const result = await client.batchUpdateUsers(iterate(updates));
      assert.equal(result.updatedCount, 2);
      assert.equal(result.errors.length, 5);
      assert.match(
        result.errors[0] ?? "",
        /^update #2 \(user_id=99999999\): user 99999999 not found/,
      );
      assert.match(result.errors[1] ?? "", /^update #3 .*user\.email: must be a valid email/);
      assert.match(result.errors[2] ?? "", /^update #4 .*email: already taken/);
      assert.match(
        result.errors[3] ?? "",
        /^update #6 .*update_mask: created_at cannot be changed/,
      );
      assert.match(result.errors[4] ?? "", /^update #7 .*nothing to update/);
      const { user: updatedA } = await client.getUser({ userId: a.userId });
      assert.deepEqual(updatedA?.tags, ["x"]);
      assert.deepEqual(updatedA?.metadata, { team: "core" });
      const { user: updatedB } = await client.getUser({ userId: b.userId });
      assert.equal(updatedB?.username, `${b.username}_renamed`);
      assert.equal(updatedB?.email, b.email);
    });

    it("syncs a status update from one client to a follower on another", async () => {
      const user = await createUser("sync");
      const follower = createUserClient({
        baseUrl: server.url,
        protocol,
        token: server.adminToken,
      });
      const updater = createUserClient({ baseUrl: server.url, protocol, token: server.adminToken });
      const followerOut = pushable<StatusUpdateInit>();
      const controller = new AbortController();
      const followerIn = follower
        .syncUserStatus(followerOut, { signal: controller.signal, timeoutMs: 0 })
        [Symbol.asyncIterator]();
      followerOut.push({ userId: user.userId });
      const [snapshot] = await take(followerIn, 1);
      assert.equal(snapshot?.userId, user.userId);
      assert.equal(snapshot?.status, UserStatus.ACTIVE);

      const updaterOut = pushable<StatusUpdateInit>();
      const updaterIn = updater
        .syncUserStatus(updaterOut, { timeoutMs: 0 })
        [Symbol.asyncIterator]();
      updaterOut.push({ userId: user.userId, status: UserStatus.INACTIVE });
      const [update] = await take(followerIn, 1);
      assert.equal(update?.userId, user.userId);
      assert.equal(update?.status, UserStatus.INACTIVE);
      assert.ok(update?.timestamp);
      // The update was stored, and the updater got no echo: its stream ends cleanly when it closes.
      assert.equal(
        (await client.getUser({ userId: user.userId })).user?.status,
        UserStatus.INACTIVE,
      );
      updaterOut.end();
      assert.deepEqual(await updaterIn.next(), { done: true, value: undefined });
      // An update about an unknown user ends that stream with NOT_FOUND.
      const badOut = pushable<StatusUpdateInit>();
      const badIn = updater.syncUserStatus(badOut)[Symbol.asyncIterator]();
      badOut.push({ userId: 77777777n, status: UserStatus.ACTIVE });
      await rejectsWith(badIn.next(), Code.NotFound);
      controller.abort();
      await rejectsWith(followerIn.next(), Code.Canceled);
    });
  });
}

describe("HTTP/1.1 on the same port", () => {
  for (const protocol of ["connect", "grpc-web"] as const) {
    it(`serves ${protocol} unary and server-streaming calls`, async () => {
      const client = createUserClient({
        baseUrl: server.url,
        protocol,
        httpVersion: "1.1",
        token: server.adminToken,
      });
      const username = `h1_${protocol.replace("-", "")}`;
      const { user } = await client.createUser({
        username,
        email: `${username}@example.com`,
        password,
      });
      assert.equal((await client.getUser({ userId: user?.userId ?? 0n })).user?.username, username);
      const stream = client.streamUserActivities({ userId: user?.userId ?? 0n }, { timeoutMs: 0 });
      const [created] = await take(stream[Symbol.asyncIterator](), 1);
      assert.equal(created?.action, "user.created");
    });
  }

  it("answers a plain HTTP/1.1 Connect JSON request", async () => {
    const res = await fetch(`${server.url}/user.v1.UserService/GetUser`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${server.adminToken}` },
      body: JSON.stringify({ userId: "0" }),
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { code: string; message: string };
    assert.equal(body.code, "invalid_argument");
    assert.match(body.message, /user_id/);
  });
});
