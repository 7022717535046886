import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createUserClient, type Protocol } from "@keel/clients";
import { UserStatus } from "@keel/gen/user/v1/user_pb";
import { iterate } from "./testing/rpc.ts";
import { startTestServer, type TestServer } from "./testing/test-server.ts";

// Every protocol and call kind, on keel's engine and with KEEL_ENGINE=connect (connect-node's
// adapter for everything): the same answers either way.

const ways: [Protocol, "1.1" | "2"][] = [
  ["grpc", "2"],
  ["grpc-web", "2"],
  ["grpc-web", "1.1"],
  ["connect", "2"],
  ["connect", "1.1"],
];

for (const engine of ["keel", "connect"] as const) {
  describe(`every protocol and call kind, engine ${engine}`, () => {
    let server: TestServer;
    let userId: bigint;
    before(async () => {
      server = await startTestServer({ engine });
      const admin = createUserClient({ baseUrl: server.url, token: server.adminToken });
      const { user } = await admin.createUser({
        username: `switch_${engine}`,
        email: `switch_${engine}@example.com`,
        password: "correct horse battery",
      });
      userId = user?.userId ?? 0n;
    });
    after(() => server.stop());

    for (const [protocol, httpVersion] of ways) {
      it(`${protocol} over HTTP/${httpVersion}`, async () => {
        const users = createUserClient({
          baseUrl: server.url,
          token: server.adminToken,
          protocol,
          httpVersion,
        });
        // Unary, and an error with its code.
        assert.equal((await users.getUser({ userId })).user?.userId, userId);
        const missing = await users.getUser({ userId: 999_999n }).then(
          () => undefined,
          (err: unknown) => ConnectError.from(err).code,
        );
        assert.equal(missing, Code.NotFound);
        // Client streaming.
        const batch = await users.batchUpdateUsers(
          iterate([{ userId, user: { tags: [protocol] }, updateMask: { paths: ["tags"] } }]),
        );
        assert.equal(batch.updatedCount, 1);
        // Server streaming: the history the update above made.
        const controller = new AbortController();
        for await (const activity of users.streamUserActivities(
          { userId },
          { signal: controller.signal },
        )) {
          assert.equal(activity.userId, userId);
          controller.abort();
          break;
        }
        // Bidi, over HTTP/2 only.
        if (httpVersion === "2") {
          for await (const update of users.syncUserStatus(
            iterate([{ userId, status: UserStatus.ACTIVE }]),
          )) {
            assert.equal(update.userId, userId);
            break;
          }
        }
      });
    }

    it("is served by the engine asked for", async () => {
      // The engine names the compressions it accepts in every gRPC answer; connect-node does not.
      const users = createUserClient({ baseUrl: server.url, token: server.adminToken });
      let accepted: string | null = null;
      await users.getUser(
        { userId },
        { onHeader: (h) => (accepted = h.get("grpc-accept-encoding")) },
      );
      assert.equal(accepted, engine === "keel" ? "gzip,br" : null);
    });

    it("answers a Connect GET of a read (GetUser has no side effects), and refuses one of a write", async () => {
      const get = (path: string, message: unknown) =>
        fetch(
          `${server.url}${path}?connect=v1&encoding=json&message=${encodeURIComponent(JSON.stringify(message))}`,
          { headers: { authorization: `Bearer ${server.adminToken}` } },
        );
      const read = await get("/user.v1.UserService/GetUser", { userId: String(userId) });
      assert.equal(read.status, 200);
      assert.equal(
        ((await read.json()) as { user: { userId: string } }).user.userId,
        String(userId),
      );
      const write = await get("/user.v1.UserService/CreateUser", { username: "x" });
      assert.equal(write.status, 405);
    });

    it("a call without a token: UNAUTHENTICATED on every protocol", async () => {
      for (const [protocol, httpVersion] of ways) {
        const anonymous = createUserClient({ baseUrl: server.url, protocol, httpVersion });
        const code = await anonymous.getUser({ userId }).then(
          () => undefined,
          (err: unknown) => ConnectError.from(err).code,
        );
        assert.equal(code, Code.Unauthenticated, `${protocol} ${httpVersion}`);
      }
    });
  });
}
