import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { DescMessage } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  type StreamRequest,
  type StreamResponse,
} from "@connectrpc/connect";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { remainingTimeMs } from "./context.ts";
import { createDeadlineInterceptor } from "./deadline.ts";
import { messages, protocols, startTestService } from "./testing/test-service.ts";

const aborted: string[] = [];
const remaining: (number | undefined)[] = [];
let service: Awaited<ReturnType<typeof startTestService>>;

// Handlers that take their time and ignore the deadline, except for noting when their signal aborts.
before(async () => {
  service = await startTestService(
    [
      createDeadlineInterceptor({
        defaultTimeoutMs: 300,
        methods: { "user.v1.UserService/SyncUserStatus": 300 },
      }),
    ],
    {
      async getUser(req, ctx) {
        remaining.push(remainingTimeMs(ctx));
        ctx.signal.addEventListener("abort", () => aborted.push("GetUser"));
        await sleep(Number(req.userId));
        return { user: { userId: req.userId } };
      },
      async *streamUserActivities(req) {
        for (let i = 1n; i <= 3n; i++) {
          await sleep(Number(req.userId));
          yield { activityId: i };
        }
      },
      async batchUpdateUsers(requests) {
        let updatedCount = 0;
        for await (const _ of requests) updatedCount++;
        await sleep(1000);
        return { updatedCount };
      },
      async *syncUserStatus(requests) {
        for await (const req of requests) {
          yield { userId: req.userId };
          await sleep(1000);
        }
      },
    },
  );
});
after(() => service.close());

const isDeadline = (err: unknown) =>
  err instanceof ConnectError && err.code === Code.DeadlineExceeded;

describe("deadline interceptor", () => {
  for (const protocol of protocols) {
    it(`gives a unary call without a deadline the default one, over ${protocol}`, async () => {
      const started = Date.now();
      await assert.rejects(service.client(protocol).getUser({ userId: 2000n }), isDeadline);
      const took = Date.now() - started;
      assert.ok(took >= 250 && took < 1500, `ended after ${took} ms`);
      assert.ok(aborted.includes("GetUser"), "the handler's signal aborted");
      const left = remaining.at(-1);
      assert.ok(left !== undefined && left > 0 && left <= 300, `remaining ${left}`);
    });

    it(`keeps the client's own deadline, longer or shorter, over ${protocol}`, async () => {
      const { user } = await service
        .client(protocol)
        .getUser({ userId: 500n }, { timeoutMs: 3000 });
      assert.equal(user?.userId, 500n);
      const left = remaining.at(-1);
      assert.ok(left !== undefined && left > 300 && left <= 3000, `remaining ${left}`);
      const started = Date.now();
      await assert.rejects(
        service.client(protocol).getUser({ userId: 2000n }, { timeoutMs: 100 }),
        isDeadline,
      );
      assert.ok(Date.now() - started < 1000);
    });
  }

  it("leaves live server streams open by default", async () => {
    const received = [];
    for await (const a of service.client("grpc").streamUserActivities({ userId: 150n }))
      received.push(a.activityId);
    assert.deepEqual(received, [1n, 2n, 3n]);
  });

  it("ends a stream at a per-method default deadline, after what was sent", async () => {
    const received: bigint[] = [];
    await assert.rejects(async () => {
      for await (const update of service
        .client("grpc")
        .syncUserStatus(messages([{ userId: 1n }, { userId: 2n }]))) {
        received.push(update.userId);
      }
    }, isDeadline);
    assert.deepEqual(received, [1n]);
  });

  it("gives client streams the unary default", async () => {
    await assert.rejects(
      service.client("connect").batchUpdateUsers(messages([{ userId: 1n }])),
      isDeadline,
    );
  });
});

describe("deadline interceptor on a long stream", () => {
  it("holds no memory per message while the deadline runs", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const method = UserService.method.streamUserActivities;
    const count = 200_000;
    async function* activities() {
      for (let i = 0; i < count; i++) yield { activityId: BigInt(i) };
    }
    const next = async () =>
      ({ stream: true, message: activities() }) as unknown as StreamResponse<
        DescMessage,
        DescMessage
      >;
    const req = {
      stream: true,
      method,
      service: method.parent,
      header: new Headers(),
      contextValues: createContextValues(),
      signal: new AbortController().signal,
    } as unknown as StreamRequest<DescMessage, DescMessage>;
    const res = await createDeadlineInterceptor({ defaultStreamTimeoutMs: 60_000 })(next)(req);
    assert.ok(res.stream);
    const it = res.message[Symbol.asyncIterator]();
    let received = 0;
    let heapAtStart = 0;
    for (;;) {
      const step = await it.next();
      if (step.done === true) break;
      if (++received === 1_000) {
        gc();
        heapAtStart = process.memoryUsage().heapUsed;
      }
    }
    gc();
    const grown = process.memoryUsage().heapUsed - heapAtStart;
    assert.equal(received, count);
    // A reaction per message left on a promise of the deadline was about 300 bytes: 57 MiB here.
    assert.ok(grown < 8 * 2 ** 20, `the heap grew by ${(grown / 2 ** 20).toFixed(1)} MiB`);
  });
});
