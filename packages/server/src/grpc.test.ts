import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { createUserClient } from "@keel/clients";
import { Health } from "@keel/gen/health/v1/health_pb";
import { StreamUserActivitiesRequestSchema, UserActivitySchema } from "@keel/gen/user/v1/user_pb";
import type { Store } from "@keel/store";
import { frame, rawGrpcRequest } from "./testing/rpc.ts";
import { startTestServer, type TestServer } from "./testing/test-server.ts";

const getUser = "/user.v1.UserService/GetUser";
const healthCheck = `/${Health.typeName}/Check`;
const maxMessageBytes = 4 * 1024 * 1024;

let server: TestServer;
let session: http2.ClientHttp2Session;
before(async () => {
  server = await startTestServer();
  session = http2.connect(server.url);
  await new Promise<void>((resolve, reject) => {
    session.once("connect", () => resolve());
    session.once("error", reject);
  });
});
after(async () => {
  await new Promise<void>((resolve) => session.close(() => resolve()));
  await server.stop();
});

interface GrpcResult {
  status: number | undefined;
  message: string;
  body: Buffer;
}

/**
 * One raw unary gRPC call over the shared HTTP/2 session, signed in (a call without a valid token
 * is refused on its headers, before any of its body is read).
 */
async function rawCall(
  path: string,
  body: Buffer,
  extraHeaders: http2.OutgoingHttpHeaders = {},
): Promise<GrpcResult> {
  const {
    headers,
    trailers,
    body: received,
  } = await rawGrpcRequest(session, path, body, {
    authorization: `Bearer ${server.adminToken}`,
    ...extraHeaders,
  });
  // A trailers-only response carries the status in the headers block.
  const status = trailers["grpc-status"] ?? headers["grpc-status"];
  const message = trailers["grpc-message"] ?? headers["grpc-message"] ?? "";
  return {
    status: status === undefined ? undefined : Number(status),
    message: decodeURIComponent(String(message)),
    body: received,
  };
}

/** The message is a short, readable explanation, not a stack trace. */
function assertHelpful(message: string, pattern: RegExp) {
  assert.match(message, pattern);
  assert.doesNotMatch(message, /\n\s+at |\.ts:\d+|node:internal/);
  assert.ok(message.length < 300, `message too long: ${message.length}`);
}

describe("gRPC error handling (the engine, in connect's words)", () => {
  it("refuses a request body over the 4 MiB message limit with RESOURCE_EXHAUSTED", async () => {
    const payload = Buffer.alloc(maxMessageBytes + 100, 0x0a);
    const result = await rawCall(getUser, frame(payload));
    assert.equal(result.status, Code.ResourceExhausted);
    assertHelpful(
      result.message,
      /^message size 4194404 is larger than configured readMaxBytes 4194304$/,
    );
    assert.equal(result.body.length, 0);
  });

  it("refuses an invalid grpc-timeout header with INVALID_ARGUMENT", async () => {
    const result = await rawCall(getUser, frame(new Uint8Array(0)), { "grpc-timeout": "soon" });
    assert.equal(result.status, Code.InvalidArgument);
    assertHelpful(result.message, /invalid grpc timeout value: soon/);
  });

  it("refuses an empty body (no message at all) with UNIMPLEMENTED, as connect does", async () => {
    const result = await rawCall(getUser, Buffer.alloc(0));
    assert.equal(result.status, Code.Unimplemented);
    assertHelpful(result.message, /missing input message/);
  });

  // connect's router answers a request that ends inside its envelope with INVALID_ARGUMENT.
  it("refuses a truncated 3-byte frame with INVALID_ARGUMENT", async () => {
    const result = await rawCall(getUser, Buffer.from([0, 0, 0]));
    assert.equal(result.status, Code.InvalidArgument);
    assertHelpful(result.message, /^protocol error: incomplete envelope$/);
  });

  it("refuses a frame shorter than its declared length with INVALID_ARGUMENT", async () => {
    const result = await rawCall(getUser, frame(Buffer.from([0x0a, 0x01]), 0, 10));
    assert.equal(result.status, Code.InvalidArgument);
    assertHelpful(result.message, /^protocol error: incomplete envelope$/);
  });

  it("refuses a compressed flag without grpc-encoding with INTERNAL", async () => {
    const result = await rawCall(getUser, frame(new Uint8Array(0), 1));
    assert.equal(result.status, Code.Internal);
    assertHelpful(
      result.message,
      /^received compressed envelope, but do not know how to decompress$/,
    );
  });

  // connect (and grpc-go) answer a message that does not parse with INTERNAL.
  it("refuses an unparseable protobuf payload with INTERNAL", async () => {
    // Tag with wire type 7, which does not exist.
    const result = await rawCall(getUser, frame(Buffer.from([0x0f, 0xff, 0xff])));
    assert.equal(result.status, Code.Internal);
    assertHelpful(result.message, /^parse binary: /);
  });

  it("survives a client that resets its stream with an error code in the middle of a request", async () => {
    const stream = session.request({
      ":method": "POST",
      ":path": getUser,
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${server.adminToken}`,
    });
    stream.on("error", () => {});
    const closed = new Promise((resolve) => stream.once("close", resolve));
    // Two bytes of a five-byte frame header, then RST_STREAM with INTERNAL_ERROR.
    stream.write(Buffer.from([0, 0]));
    await new Promise((resolve) => setTimeout(resolve, 50));
    stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    await closed;
    const result = await rawCall(healthCheck, frame(new Uint8Array(0)));
    assert.equal(result.status, 0, result.message);
  });

  it("answers a gRPC call that carries a browser's origin header the same way", async () => {
    const direct = await rawCall(healthCheck, frame(new Uint8Array(0)));
    const fromPage = await rawCall(healthCheck, frame(new Uint8Array(0)), {
      origin: "https://page.example",
    });
    assert.equal(fromPage.status, 0, fromPage.message);
    assert.deepEqual(fromPage.body, direct.body);
  });

  it("refuses calls without a token on their headers alone, while their bodies never end", async () => {
    // 100 streams on a connection of their own, each declaring a 4 MiB message and sending 16 KiB
    // of it: each is answered UNAUTHENTICATED at once and told to stop.
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(maxMessageBytes, 1);
    const own = http2.connect(server.url);
    own.on("error", () => {});
    const answers = await Promise.all(
      Array.from(
        { length: 100 },
        () =>
          new Promise<string>((resolve) => {
            const stream = own.request({
              ":method": "POST",
              ":path": getUser,
              "content-type": "application/grpc",
              te: "trailers",
            });
            stream.on("error", () => {});
            stream.on("response", (headers) => resolve(String(headers["grpc-status"])));
            stream.write(Buffer.concat([prefix, Buffer.alloc(16 * 1024, 0x0a)]));
          }),
      ),
    );
    own.destroy();
    assert.deepEqual(new Set(answers), new Set([String(Code.Unauthenticated)]));
  });

  it("keeps serving afterwards: a health check on the same session succeeds", async () => {
    const result = await rawCall(healthCheck, frame(new Uint8Array(0)));
    assert.equal(result.status, 0, result.message); // OK (connect's Code has no OK)
    assert.ok(result.body.length >= 5);
    assert.equal(result.body[0], 0);
    assert.equal(result.body.readUInt32BE(1), result.body.length - 5);
  });
});

describe("server streaming over gRPC", () => {
  it("waits for a slow reader: every message arrives, in order, across history pages", async () => {
    const users = createUserClient({
      baseUrl: server.url,
      protocol: "grpc",
      token: server.adminToken,
    });
    const created = await users.createUser({
      username: "slow_reader",
      email: "slow_reader@example.com",
      password: "a-long-password-1",
    });
    const userId = created.user?.userId ?? 0n;
    // 600 updates: 601 activities, more than one history page (500).
    const updates = 600;
    async function* batch() {
      for (let i = 0; i < updates; i++) {
        yield { userId, user: { tags: [`t${i}`] }, updateMask: { paths: ["tags"] } };
      }
    }
    assert.equal((await users.batchUpdateUsers(batch())).updatedCount, updates);

    // A client window of 1 KiB: the server fills it at once and has to wait for the reader.
    const slow = http2.connect(server.url, { settings: { initialWindowSize: 1024 } });
    try {
      const stream = slow.request({
        ":method": "POST",
        ":path": "/user.v1.UserService/StreamUserActivities",
        "content-type": "application/grpc",
        te: "trailers",
        authorization: `Bearer ${server.adminToken}`,
      });
      stream.end(
        frame(
          toBinary(
            StreamUserActivitiesRequestSchema,
            create(StreamUserActivitiesRequestSchema, { userId }),
          ),
        ),
      );
      const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) =>
        stream.once("response", resolve),
      );
      assert.equal(headers[":status"], 200);
      assert.match(String(headers["x-request-id"]), /^[0-9a-f-]{36}$/);
      stream.pause();
      await new Promise((resolve) => setTimeout(resolve, 200));
      const ids: bigint[] = [];
      let buffered = Buffer.alloc(0);
      await new Promise<void>((resolve, reject) => {
        stream.on("error", reject);
        stream.on("data", (chunk: Buffer) => {
          buffered = Buffer.concat([buffered, chunk]);
          while (buffered.length >= 5 && buffered.length >= 5 + buffered.readUInt32BE(1)) {
            const length = buffered.readUInt32BE(1);
            const activity = fromBinary(UserActivitySchema, buffered.subarray(5, 5 + length));
            ids.push(activity.activityId);
            buffered = buffered.subarray(5 + length);
          }
          if (ids.length === updates + 1) resolve();
        });
        stream.resume();
      });
      assert.equal(ids.length, updates + 1);
      assert.ok(ids.every((id, i) => i === 0 || id > (ids[i - 1] as bigint)));
      stream.close(http2.constants.NGHTTP2_CANCEL);
    } finally {
      slow.close();
    }
  });

  it("ends a stream that fails after its first messages with the status in its trailers", async () => {
    const users = createUserClient({
      baseUrl: server.url,
      protocol: "grpc",
      token: server.adminToken,
    });
    const created = await users.createUser({
      username: "deadline_reader",
      email: "deadline_reader@example.com",
      password: "a-long-password-1",
    });
    const userId = created.user?.userId ?? 0n;
    // The history (one activity) goes out at once; then the feed waits for live ones until the
    // client's deadline ends it.
    const result = await rawCall(
      "/user.v1.UserService/StreamUserActivities",
      frame(
        toBinary(
          StreamUserActivitiesRequestSchema,
          create(StreamUserActivitiesRequestSchema, { userId }),
        ),
      ),
      { authorization: `Bearer ${server.adminToken}`, "grpc-timeout": "300m" },
    );
    assert.equal(result.status, Code.DeadlineExceeded);
    assertHelpful(result.message, /timed out|deadline/);
    const length = result.body.readUInt32BE(1);
    assert.equal(result.body.length, 5 + length, "exactly one message before the status");
    const activity = fromBinary(UserActivitySchema, result.body.subarray(5));
    assert.equal(activity.action, "user.created");
    assert.equal(activity.userId, userId);
  });

  it("refuses a server-streaming call without its request message with UNIMPLEMENTED", async () => {
    const result = await rawCall("/user.v1.UserService/StreamUserActivities", Buffer.alloc(0), {
      authorization: `Bearer ${server.adminToken}`,
    });
    assert.equal(result.status, Code.Unimplemented);
    assertHelpful(result.message, /missing input message for server-streaming method/);
  });

  it("answers a stream that fails before its first message with its status and message", async () => {
    const result = await rawCall(
      "/user.v1.UserService/StreamUserActivities",
      frame(
        toBinary(
          StreamUserActivitiesRequestSchema,
          create(StreamUserActivitiesRequestSchema, { userId: 424242424n }),
        ),
      ),
      { authorization: `Bearer ${server.adminToken}` },
    );
    assert.equal(result.status, Code.NotFound);
    assertHelpful(result.message, /user 424242424/);
    assert.equal(result.body.length, 0);
  });
});

describe("deadlines on the engine and on connect's path", () => {
  // Reads take 2 s and ignore the call's signal, as a stuck dependency would.
  const slowReadMs = 2000;
  let slow: TestServer;
  before(async () => {
    slow = await startTestServer({
      defaultTimeoutMs: 150,
      wrapStore: (store) =>
        Object.assign(Object.create(store) as Store, {
          users: {
            ...store.users,
            get: async (id: bigint) => {
              await new Promise((resolve) => setTimeout(resolve, slowReadMs));
              return store.users.get(id);
            },
          },
        }),
    });
  });
  after(() => slow.stop());

  for (const protocol of ["grpc", "grpc-web", "connect"] as const) {
    it(`ends a call past the default deadline with DEADLINE_EXCEEDED over ${protocol}`, async () => {
      // No deadline from the client (timeoutMs 0): the server's default applies.
      const users = createUserClient({
        baseUrl: slow.url,
        protocol,
        token: slow.adminToken,
        timeoutMs: 0,
      });
      const started = Date.now();
      const err = await users.getUser({ userId: 1n }).then(
        () => assert.fail("GetUser should not succeed"),
        (e: unknown) => e,
      );
      const took = Date.now() - started;
      assert.equal((err as { code?: Code }).code, Code.DeadlineExceeded);
      assert.match(String((err as Error).message), /the default deadline of 150 ms expired/);
      assert.ok(took >= 140 && took < slowReadMs, `answered after ${took} ms`);
    });

    it(`lets a client's shorter deadline win over the default over ${protocol}`, async () => {
      const users = createUserClient({ baseUrl: slow.url, protocol, token: slow.adminToken });
      const err = await users.getUser({ userId: 1n }, { timeoutMs: 40 }).then(
        () => assert.fail("GetUser should not succeed"),
        (e: unknown) => e,
      );
      assert.equal((err as { code?: Code }).code, Code.DeadlineExceeded);
      assert.doesNotMatch(String((err as Error).message), /default deadline/);
    });
  }
});
