import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import {
  GetUserRequestSchema,
  StreamUserActivitiesRequestSchema,
  UserService,
} from "@keel/gen/user/v1/user_pb";
import { createGrpcFastPath } from "./grpc-fast-path.ts";
import { frame } from "./testing/rpc.ts";

const getUser = "/user.v1.UserService/GetUser";
const maxMessageBytes = 4 * 1024 * 1024;

describe("what a finished call leaves on its stream", () => {
  // The stream lives on until the client has its trailers; a listener of the call left on it
  // would keep the call's state (signal, headers, request) alive with it, into the old generation.
  const events = ["data", "end", "close", "wantTrailers"] as const;

  async function listenersAfterCall(
    impl: Record<string, unknown>,
    path: string,
    body: Buffer,
  ): Promise<{ left: string[]; status: number | undefined }> {
    const fastPath = createGrpcFastPath({
      services: [{ service: UserService, impl }],
      interceptors: [],
      contextValues: () => createContextValues(),
      maxMessageBytes,
    });
    let before: unknown[] = [];
    let served: http2.ServerHttp2Stream | undefined;
    const h2 = http2.createServer();
    h2.on("stream", (stream, headers) => {
      before = events.flatMap((e) => stream.listeners(e));
      served = stream;
      assert.ok(fastPath(stream, headers), "the fast path should take the call");
    });
    await new Promise<void>((resolve) => h2.listen(0, "127.0.0.1", resolve));
    const client = http2.connect(`http://127.0.0.1:${(h2.address() as { port: number }).port}`);
    try {
      const result = await new Promise<{ status: number | undefined }>((resolve, reject) => {
        const stream = client.request({
          ":method": "POST",
          ":path": path,
          "content-type": "application/grpc",
          te: "trailers",
        });
        stream.on("error", reject);
        stream.on("trailers", (t) => resolve({ status: Number(t["grpc-status"]) }));
        stream.resume();
        stream.end(body);
      });
      const stream = served as http2.ServerHttp2Stream;
      // Node's own listener that destroys an ended stream is no business of the call's.
      const left = events.flatMap((e) =>
        stream
          .listeners(e)
          .filter((fn) => !before.includes(fn) && fn.name !== "[kMaybeDestroy]")
          .map((fn) => `${e}: ${fn.name || "anonymous"}`),
      );
      return { left, ...result };
    } finally {
      client.close();
      await new Promise((resolve) => h2.close(resolve));
    }
  }

  const request = frame(
    toBinary(GetUserRequestSchema, create(GetUserRequestSchema, { userId: 7n })),
  );

  it("takes its listeners off a unary call's stream once the answer is out", async () => {
    const result = await listenersAfterCall(
      { getUser: async (req: { userId: bigint }) => ({ user: { userId: req.userId } }) },
      getUser,
      request,
    );
    assert.equal(result.status, 0);
    assert.deepEqual(result.left, []);
  });

  it("does so for a call that fails, too", async () => {
    const result = await listenersAfterCall(
      {
        getUser: async () => {
          throw new ConnectError("no such user", Code.NotFound);
        },
      },
      getUser,
      request,
    );
    assert.equal(result.status, Code.NotFound);
    assert.deepEqual(result.left, []);
  });

  it("and for a server stream once it has ended", async () => {
    const result = await listenersAfterCall(
      {
        async *streamUserActivities() {
          yield { activityId: 1n };
          yield { activityId: 2n };
        },
      },
      "/user.v1.UserService/StreamUserActivities",
      frame(
        toBinary(
          StreamUserActivitiesRequestSchema,
          create(StreamUserActivitiesRequestSchema, { userId: 7n }),
        ),
      ),
    );
    assert.equal(result.status, 0);
    assert.deepEqual(result.left, []);
  });
});
