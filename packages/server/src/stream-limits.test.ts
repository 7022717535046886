import { after, before, describe, it } from "node:test";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createUserClient } from "@keel/clients";
import { Health } from "@keel/gen/health/v1/health_pb";
import { retryWhileExhausted } from "@keel/interceptors/testing";
import { rejectsWith } from "./testing/rpc.ts";
import { mintToken, startTestServer, type TestServer } from "./testing/test-server.ts";

// Issue 17, item 5: 3,000 StreamUserActivities streams of one user and 3,000 anonymous
// Health/Watch streams all stayed open.
let server: TestServer;
before(async () => {
  server = await startTestServer({ streamLimits: { perPrincipal: 3, perAddress: 3 } });
});
after(() => server.stop());

/** Opens a stream and waits for its first message, so that it is known to be open. */
async function openStream<T>(stream: AsyncIterable<T>, controller: AbortController) {
  const it = stream[Symbol.asyncIterator]();
  await it.next();
  return {
    async close() {
      controller.abort();
      await it.next().catch(() => undefined);
    },
  };
}

describe("stream limits", () => {
  it("refuses a user's stream over the limit over gRPC, and takes it once one closes", async () => {
    const admin = createUserClient({ baseUrl: server.url, token: server.adminToken });
    const { user } = await admin.createUser({
      username: "streamer",
      email: "streamer@example.com",
      password: "long enough password",
    });
    const userId = user?.userId ?? 0n;
    const client = createUserClient({
      baseUrl: server.url,
      protocol: "grpc",
      token: await mintToken(userId),
    });
    const open = () => {
      const controller = new AbortController();
      const stream = client.streamUserActivities(
        { userId },
        { signal: controller.signal, timeoutMs: 0 },
      );
      return openStream(stream, controller);
    };
    const streams = [await open(), await open(), await open()];
    await rejectsWith(
      open(),
      Code.ResourceExhausted,
      /^too many open streams for this caller: 3 of at most 3; close one/,
    );
    // Other callers are not affected.
    const otherController = new AbortController();
    const other = await openStream(
      admin.streamUserActivities({ userId }, { signal: otherController.signal, timeoutMs: 0 }),
      otherController,
    );
    await streams[0]?.close();
    streams[0] = await retryWhileExhausted(open);
    for (const stream of [...streams, other]) await stream.close();
  });

  it("refuses anonymous Health/Watch streams over the limit per address", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
    const open = () => {
      const controller = new AbortController();
      return openStream(health.watch({ service: "" }, { signal: controller.signal }), controller);
    };
    const streams = [await open(), await open(), await open()];
    await rejectsWith(open(), Code.ResourceExhausted, /from this address: 3 of at most 3/);
    for (const stream of streams) await stream.close();
  });
});
