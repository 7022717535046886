import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { messages, protocols, startTestService } from "@keel/interceptors/testing";
import { Registry } from "prom-client";
import { createClientMetrics } from "./client-metrics.ts";
import { createServerMetrics } from "./server-metrics.ts";
import { labels, methods, nonZero, perMethod, samples } from "./testing/metric-samples.ts";

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** GetUser as the test service has it, plus user 404 answering NotFound. */
const getUserWithNotFound = {
  getUser(req: { userId: bigint }) {
    if (req.userId === 404n) throw new ConnectError("user 404 not found", Code.NotFound);
    if (req.userId === 13n) throw new Error("unlucky");
    return { user: { userId: req.userId, username: `user${req.userId}` } };
  },
};

/**
 * 3 GetUser OK, 1 NotFound, 1 plain error (Internal), a server stream of 3, a client stream of 2
 * and a bidi exchange of 2.
 */
async function knownCalls(client: Client<typeof UserService>): Promise<void> {
  for (const userId of [1n, 2n, 3n]) await client.getUser({ userId });
  await assert.rejects(client.getUser({ userId: 404n }), { code: Code.NotFound });
  await assert.rejects(client.getUser({ userId: 13n }), { code: Code.Internal });
  let activities = 0;
  for await (const _ of client.streamUserActivities({ userId: 7n })) activities++;
  assert.equal(activities, 3);
  const batch = await client.batchUpdateUsers(messages([{ userId: 1n }, { userId: 2n }]));
  assert.equal(batch.updatedCount, 2);
  const synced: bigint[] = [];
  for await (const update of client.syncUserStatus(messages([{ userId: 1n }, { userId: 2n }]))) {
    synced.push(update.userId);
  }
  assert.deepEqual(synced, [1n, 2n]);
}

const called = ["GetUser", "StreamUserActivities", "BatchUpdateUsers", "SyncUserStatus"];

for (const protocol of protocols) {
  describe(`metrics of known calls over ${protocol}`, () => {
    const registry = new Registry();
    const server = createServerMetrics({
      services: [UserService],
      registry,
      collectDefaultMetrics: false,
    });
    const client = createClientMetrics({ registry });
    let service: Awaited<ReturnType<typeof startTestService>>;
    let text: string;

    before(async () => {
      service = await startTestService([server.interceptor], getUserWithNotFound);
      await knownCalls(service.client(protocol, [client.interceptor]));
      text = await registry.metrics();
    });
    after(() => service.close());

    it("counts started calls for every method of the service, at zero for those never called", () => {
      assert.deepEqual(
        samples(text, "grpc_server_started_total"),
        perMethod({ GetUser: 5, StreamUserActivities: 1, BatchUpdateUsers: 1, SyncUserStatus: 1 }),
      );
    });

    it("counts handled calls per code, every code of every method present", () => {
      assert.deepEqual(nonZero(text, "grpc_server_handled_total"), {
        [labels("GetUser", "OK")]: 3,
        [labels("GetUser", "NotFound")]: 1,
        [labels("GetUser", "Internal")]: 1,
        [labels("StreamUserActivities", "OK")]: 1,
        [labels("BatchUpdateUsers", "OK")]: 1,
        [labels("SyncUserStatus", "OK")]: 1,
      });
      const handled = samples(text, "grpc_server_handled_total");
      assert.equal(Object.keys(handled).length, methods.length * 17);
      assert.equal(handled[labels("ListUsers", "Unauthenticated")], 0);
      assert.equal(handled[labels("ListUsers", "OK")], 0);
    });

    it("counts messages received and sent, each stream message as it passes", () => {
      assert.deepEqual(
        samples(text, "grpc_server_msg_received_total"),
        perMethod({ GetUser: 5, StreamUserActivities: 1, BatchUpdateUsers: 2, SyncUserStatus: 2 }),
      );
      assert.deepEqual(
        samples(text, "grpc_server_msg_sent_total"),
        perMethod({ GetUser: 3, StreamUserActivities: 3, BatchUpdateUsers: 1, SyncUserStatus: 2 }),
      );
    });

    it("observes every handled call in the histogram, with the default buckets", () => {
      const counts = {
        GetUser: 5,
        StreamUserActivities: 1,
        BatchUpdateUsers: 1,
        SyncUserStatus: 1,
      };
      assert.deepEqual(samples(text, "grpc_server_handling_seconds_count"), perMethod(counts));
      const buckets = samples(text, "grpc_server_handling_seconds_bucket");
      const les = Object.keys(buckets)
        .filter((k) => k.startsWith(labels("GetUser")))
        .map((k) => k.slice(labels("GetUser").length));
      assert.deepEqual(
        les,
        ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"].map(
          (le) => `,le="${le}"`,
        ),
      );
      assert.equal(buckets[`${labels("GetUser")},le="+Inf"`], 5);
      assert.equal(buckets[`${labels("ListUsers")},le="+Inf"`], 0);
      const sums = samples(text, "grpc_server_handling_seconds_sum");
      assert.ok((sums[labels("GetUser")] as number) > 0);
      assert.equal(sums[labels("ListUsers")], 0);
    });

    it("has no call in flight once all are done", () => {
      assert.deepEqual(samples(text, "grpc_server_requests_in_flight"), perMethod({}));
      assert.equal(server.inFlight(), 0);
    });

    it("records the client side in the same registry, for the methods called", () => {
      const counts = {
        GetUser: 5,
        StreamUserActivities: 1,
        BatchUpdateUsers: 1,
        SyncUserStatus: 1,
      };
      assert.deepEqual(samples(text, "grpc_client_started_total"), perMethod(counts, called));
      assert.deepEqual(
        samples(text, "grpc_client_msg_sent_total"),
        perMethod(
          { GetUser: 5, StreamUserActivities: 1, BatchUpdateUsers: 2, SyncUserStatus: 2 },
          called,
        ),
      );
      assert.deepEqual(
        samples(text, "grpc_client_msg_received_total"),
        perMethod(
          { GetUser: 3, StreamUserActivities: 3, BatchUpdateUsers: 1, SyncUserStatus: 2 },
          called,
        ),
      );
      assert.deepEqual(nonZero(text, "grpc_client_handled_total"), {
        [labels("GetUser", "OK")]: 3,
        [labels("GetUser", "NotFound")]: 1,
        [labels("GetUser", "Internal")]: 1,
        [labels("StreamUserActivities", "OK")]: 1,
        [labels("BatchUpdateUsers", "OK")]: 1,
        [labels("SyncUserStatus", "OK")]: 1,
      });
      assert.equal(
        Object.keys(samples(text, "grpc_client_handled_total")).length,
        called.length * 17,
      );
      assert.deepEqual(
        samples(text, "grpc_client_handling_seconds_count"),
        perMethod(counts, called),
      );
    });

    it("prints go-grpc-middleware's names, types and help", () => {
      const headers = text.split("\n").filter((line) => line.startsWith("# "));
      assert.deepEqual(headers, [
        "# HELP grpc_server_started_total Total number of RPCs started on the server.",
        "# TYPE grpc_server_started_total counter",
        "# HELP grpc_server_handled_total Total number of RPCs completed on the server, regardless of success or failure.",
        "# TYPE grpc_server_handled_total counter",
        "# HELP grpc_server_msg_received_total Total number of RPC stream messages received on the server.",
        "# TYPE grpc_server_msg_received_total counter",
        "# HELP grpc_server_msg_sent_total Total number of gRPC stream messages sent by the server.",
        "# TYPE grpc_server_msg_sent_total counter",
        "# HELP grpc_server_handling_seconds Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
        "# TYPE grpc_server_handling_seconds histogram",
        "# HELP grpc_server_requests_in_flight Number of RPCs being handled by the server.",
        "# TYPE grpc_server_requests_in_flight gauge",
        "# HELP grpc_client_started_total Total number of RPCs started on the client.",
        "# TYPE grpc_client_started_total counter",
        "# HELP grpc_client_handled_total Total number of RPCs completed by the client, regardless of success or failure.",
        "# TYPE grpc_client_handled_total counter",
        "# HELP grpc_client_msg_received_total Total number of RPC stream messages received by the client.",
        "# TYPE grpc_client_msg_received_total counter",
        "# HELP grpc_client_msg_sent_total Total number of gRPC stream messages sent by the client.",
        "# TYPE grpc_client_msg_sent_total counter",
        "# HELP grpc_client_handling_seconds Histogram of response latency (seconds) of the gRPC until it is finished by the application.",
        "# TYPE grpc_client_handling_seconds histogram",
      ]);
    });
  });

  describe(`calls in progress over ${protocol}`, () => {
    it("shows a slow call in flight, and then no longer", async () => {
      const registry = new Registry();
      const server = createServerMetrics({
        services: [UserService],
        registry,
        collectDefaultMetrics: false,
      });
      let entered = () => {};
      const inHandler = new Promise<void>((resolve) => {
        entered = resolve;
      });
      let release = () => {};
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      const service = await startTestService([server.interceptor], {
        async getUser(req) {
          entered();
          await released;
          return { user: { userId: req.userId } };
        },
      });
      try {
        const call = service.client(protocol).getUser({ userId: 1n });
        await inHandler;
        assert.deepEqual(
          samples(await registry.metrics(), "grpc_server_requests_in_flight"),
          perMethod({ GetUser: 1 }),
        );
        assert.equal(server.inFlight(), 1);
        release();
        await call;
        const text = await registry.metrics();
        assert.deepEqual(samples(text, "grpc_server_requests_in_flight"), perMethod({}));
        assert.equal(server.inFlight(), 0);
        assert.deepEqual(nonZero(text, "grpc_server_handled_total"), {
          [labels("GetUser", "OK")]: 1,
        });
      } finally {
        await service.close();
      }
    });

    it("counts a stream the client cancels as Canceled, on both sides", async () => {
      const registry = new Registry();
      const server = createServerMetrics({
        services: [UserService],
        registry,
        collectDefaultMetrics: false,
      });
      const client = createClientMetrics({ registry });
      const service = await startTestService([server.interceptor], {
        async *streamUserActivities(req, ctx) {
          yield { activityId: 1n, userId: req.userId, action: "user.login" };
          // A live stream: nothing more until the client goes away.
          await new Promise((resolve) =>
            ctx.signal.addEventListener("abort", resolve, { once: true }),
          );
        },
      });
      try {
        const abort = new AbortController();
        let received = 0;
        const stream = service
          .client(protocol, [client.interceptor])
          .streamUserActivities({ userId: 1n }, { signal: abort.signal });
        await assert.rejects(
          async () => {
            for await (const _ of stream) {
              received++;
              abort.abort();
            }
          },
          { code: Code.Canceled },
        );
        assert.equal(received, 1);
        await until(() => server.inFlight() === 0, "the server to see the cancel");
        const text = await registry.metrics();
        assert.deepEqual(nonZero(text, "grpc_server_handled_total"), {
          [labels("StreamUserActivities", "Canceled")]: 1,
        });
        assert.deepEqual(nonZero(text, "grpc_server_msg_sent_total"), {
          [labels("StreamUserActivities")]: 1,
        });
        assert.deepEqual(nonZero(text, "grpc_server_handling_seconds_count"), {
          [labels("StreamUserActivities")]: 1,
        });
        assert.deepEqual(nonZero(text, "grpc_client_handled_total"), {
          [labels("StreamUserActivities", "Canceled")]: 1,
        });
        assert.deepEqual(nonZero(text, "grpc_client_msg_received_total"), {
          [labels("StreamUserActivities")]: 1,
        });
      } finally {
        await service.close();
      }
    });
  });
}
