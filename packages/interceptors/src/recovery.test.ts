import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { UserService, UserStatus } from "@keel/gen/user/v1/user_pb";
import { createRecoveryInterceptor } from "./recovery.ts";

class DatabaseDown extends Error {}

const logged: { fields: Record<string, unknown>; message: string }[] = [];
let server: http2.Http2Server;
let client: ReturnType<typeof createClient<typeof UserService>>;

// A service whose every method fails in its own way: thrown, rejected, mid-stream, known errors.
before(async () => {
  const handler = connectNodeAdapter({
    routes: (router) =>
      router.service(UserService, {
        getUser(req) {
          if (req.userId === 1n) throw new Error("secret connection string postgres://u:p@db");
          if (req.userId === 2n) throw new DatabaseDown("db down");
          throw new ConnectError("no such user", Code.NotFound);
        },
        async createUser() {
          await Promise.resolve();
          throw new TypeError("cannot read properties of undefined");
        },
        async *streamUserActivities(req) {
          yield { userId: req.userId, action: "user.created" };
          throw new RangeError("boom in the middle of a stream");
        },
        async batchUpdateUsers(requests) {
          for await (const _ of requests) throw new Error("client stream handler failed");
          return {};
        },
        async *syncUserStatus(requests) {
          for await (const req of requests) {
            yield { userId: req.userId, status: UserStatus.ACTIVE };
            throw new Error("bidi handler failed");
          }
        },
      }),
    interceptors: [
      createRecoveryInterceptor({
        logger: { error: (fields, message) => logged.push({ fields, message }) },
        mapError: (err) =>
          err instanceof DatabaseDown
            ? new ConnectError("the database is unavailable", Code.Unavailable)
            : undefined,
      }),
    ],
  });
  server = http2.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  client = createClient(UserService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

async function expectInternal(call: Promise<unknown>, logFragment: string) {
  const before = logged.length;
  await assert.rejects(call, (err: unknown) => {
    assert.ok(err instanceof ConnectError);
    assert.equal(err.code, Code.Internal);
    assert.equal(err.rawMessage, "internal error");
    return true;
  });
  const entry = logged[before];
  assert.ok(entry, "the error was logged");
  assert.match(String((entry.fields.err as Error).stack), new RegExp(logFragment));
  assert.match(String(entry.fields.procedure), /^user\.v1\.UserService\//);
}

async function* one<T>(value: T): AsyncIterable<T> {
  yield value;
}

describe("recovery interceptor", () => {
  it("turns a thrown error into INTERNAL without leaking its message", () =>
    expectInternal(client.getUser({ userId: 1n }), "secret connection string"));

  it("turns a rejection into INTERNAL", () =>
    expectInternal(client.createUser({}), "cannot read properties"));

  it("passes ConnectErrors through and translates known errors", async () => {
    await assert.rejects(client.getUser({ userId: 3n }), (err: unknown) => {
      return err instanceof ConnectError && err.code === Code.NotFound;
    });
    await assert.rejects(client.getUser({ userId: 2n }), (err: unknown) => {
      return err instanceof ConnectError && err.code === Code.Unavailable;
    });
  });

  it("turns an error in the middle of a server stream into INTERNAL after what was sent", async () => {
    const received: string[] = [];
    await expectInternal(
      (async () => {
        for await (const activity of client.streamUserActivities({ userId: 5n })) {
          received.push(activity.action);
        }
      })(),
      "boom in the middle",
    );
    assert.deepEqual(received, ["user.created"]);
  });

  it("covers client-streaming and bidi handlers", async () => {
    await expectInternal(client.batchUpdateUsers(one({ userId: 1n })), "client stream handler");
    await expectInternal(
      (async () => {
        for await (const _ of client.syncUserStatus(one({ userId: 1n }))) {
          // the first response arrives, then the handler fails
        }
      })(),
      "bidi handler failed",
    );
  });

  it("keeps serving after failures", async () => {
    await assert.rejects(client.getUser({ userId: 3n }), /no such user/);
  });
});
