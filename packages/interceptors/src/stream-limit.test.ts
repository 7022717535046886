import assert from "node:assert/strict";
import { EventEmitter, once } from "node:events";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { UserStatusUpdate } from "@keel/gen/user/v1/user_pb";
import { principalKey } from "./context.ts";
import { createStreamLimitInterceptor } from "./stream-limit.ts";
import { protocols, retryWhileExhausted, startTestService } from "./testing/test-service.ts";

// The caller named by the x-user header (none: anonymous), as the authentication interceptor would.
const fakeAuthentication: Interceptor = (next) => (req) => {
  const user = req.header.get("x-user");
  if (user !== null) {
    req.contextValues.set(principalKey, {
      subject: user,
      userId: undefined,
      roles: [],
      tokenId: undefined,
    });
  }
  return next(req);
};

// Every handler announces that it runs, then stays open until the client goes away; user 0 ends
// at once, user 13 fails.
const entered = new EventEmitter();
const untilAborted = (signal: AbortSignal) =>
  new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()));

let service: Awaited<ReturnType<typeof startTestService>>;
before(async () => {
  service = await startTestService(
    [fakeAuthentication, createStreamLimitInterceptor({ perPrincipal: 2, perAddress: 3 })],
    {
      async *streamUserActivities(req, ctx) {
        entered.emit("call");
        if (req.userId === 13n) throw new ConnectError("failed", Code.Internal);
        if (req.userId === 0n) return;
        yield { activityId: 1n, userId: req.userId };
        await untilAborted(ctx.signal);
      },
      async batchUpdateUsers(requests, ctx) {
        entered.emit("call");
        for await (const r of requests) {
          if (r.userId === 13n) throw new ConnectError("failed", Code.Internal);
          if (r.userId === 0n) return {};
        }
        await untilAborted(ctx.signal);
        return {};
      },
      async *syncUserStatus(requests) {
        entered.emit("call");
        for await (const r of requests) {
          if (r.userId === 13n) throw new ConnectError("failed", Code.Internal);
          if (r.userId === 0n) return;
          yield { userId: r.userId };
        }
      },
    },
  );
});
after(() => service.close());

/** A request stream the test ends when it likes. */
function pushable<T>(first: T) {
  let end: () => void = () => {};
  const ended = new Promise<void>((resolve) => (end = resolve));
  return {
    end,
    async *[Symbol.asyncIterator]() {
      yield first;
      await ended;
    },
  };
}

type Kind = "server" | "client" | "bidi";
const kinds: Kind[] = ["server", "client", "bidi"];

/**
 * Opens a streaming call of `kind` for `userId` and resolves once its handler runs; `result`
 * settles when the call ends. `abort` cancels it.
 */
async function open(
  protocol: (typeof protocols)[number],
  kind: Kind,
  userId: bigint,
  user?: string,
  timeoutMs?: number,
) {
  const controller = new AbortController();
  const headers = user === undefined ? {} : { "x-user": user };
  const options = {
    signal: controller.signal,
    headers,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  };
  const client = service.client(protocol);
  const drain = async (stream: AsyncIterable<unknown>) => {
    for await (const _ of stream) {
    }
  };
  const requests = pushable({ userId } as Partial<UserStatusUpdate>);
  const started = once(entered, "call");
  const result =
    kind === "server"
      ? drain(client.streamUserActivities({ userId }, options))
      : kind === "client"
        ? client.batchUpdateUsers(requests as never, options)
        : drain(client.syncUserStatus(requests as never, options));
  const outcome = result.then(
    () => undefined,
    (err: unknown) => ConnectError.from(err),
  );
  const refusedEarly = outcome.then((err) => err?.code === Code.ResourceExhausted && err);
  const first = await Promise.race([started.then(() => undefined), refusedEarly]);
  if (first) throw first;
  return {
    outcome,
    async close() {
      controller.abort();
      requests.end();
      await outcome;
    },
  };
}

async function refused(call: Promise<unknown>, message: RegExp) {
  await assert.rejects(call, (err: unknown) => {
    assert.ok(err instanceof ConnectError, String(err));
    assert.equal(Code[err.code], "ResourceExhausted");
    assert.match(err.rawMessage, message);
    return true;
  });
}

describe("stream limit interceptor", () => {
  for (const protocol of protocols) {
    for (const kind of kinds) {
      describe(`${protocol}, ${kind} streaming`, () => {
        it("refuses one stream more than a caller's limit, and takes it once one closes", async () => {
          const a = await open(protocol, kind, 1n, "ann");
          const b = await open(protocol, kind, 2n, "ann");
          await refused(
            open(protocol, kind, 3n, "ann"),
            /too many open streams for this caller: 2 of at most 2/,
          );
          // Another caller has slots of its own.
          const other = await open(protocol, kind, 4n, "bob");
          await a.close();
          const c = await retryWhileExhausted(() => open(protocol, kind, 5n, "ann"));
          for (const call of [b, c, other]) await call.close();
        });

        it("frees the slot of a call that ends, fails or passes its deadline", async () => {
          const held = await open(protocol, kind, 1n, "cy");
          // Each of these ends by itself; with a slot leaked, the last open would be refused. (A
          // client may see its deadline pass a moment before the server does: hence the retries.)
          for (let i = 0; i < 3; i++) {
            const done = await retryWhileExhausted(() => open(protocol, kind, 0n, "cy"));
            assert.equal((await done.outcome)?.code, undefined);
            const failed = await retryWhileExhausted(() => open(protocol, kind, 13n, "cy"));
            assert.equal((await failed.outcome)?.code, Code.Internal);
            const late = await retryWhileExhausted(() => open(protocol, kind, 7n, "cy", 50));
            assert.equal((await late.outcome)?.code, Code.DeadlineExceeded);
          }
          const last = await retryWhileExhausted(() => open(protocol, kind, 8n, "cy"));
          await refused(open(protocol, kind, 9n, "cy"), /for this caller/);
          for (const call of [held, last]) await call.close();
        });

        it("limits anonymous streams by address", async () => {
          const calls = [];
          for (let i = 1n; i <= 3n; i++) calls.push(await open(protocol, kind, i));
          await refused(
            open(protocol, kind, 4n),
            /too many open streams from this address: 3 of at most 3/,
          );
          for (const call of calls) await call.close();
        });
      });
    }
  }

  it("does not count unary calls", async () => {
    const client = service.client("grpc");
    const held = [await open("grpc", "server", 1n, "dee"), await open("grpc", "server", 2n, "dee")];
    const headers = { "x-user": "dee" };
    for (let i = 0; i < 5; i++) await client.getUser({ userId: 1n }, { headers });
    for (const call of held) await call.close();
  });
});
