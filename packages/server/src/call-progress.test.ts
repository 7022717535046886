import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createEngine } from "@keel/engine";
import { UserService } from "@keel/gen/user/v1/user_pb";
import {
  callProgressKey,
  createDeadlineInterceptor,
  createLoggingInterceptor,
  deadlineKey,
} from "@keel/interceptors";

// The engine tells the interceptors of each call's progress (callProgressKey): the deadline
// interceptor races it, logging reads it, and no call's signal (an AbortController) is made unless
// something reads it. The engine arms the default deadline itself, as the server composes it.

const defaultMs = 150;
/** What the outermost interceptor saw of each call: its code, and when it ended. */
const seen: { code: Code | "ok"; ms: number }[] = [];
const logged: { code: string }[] = [];
let handlerReadsSignal = false;
let handled = 0;

const record: Interceptor = (next) => async (req) => {
  const started = Date.now();
  try {
    const res = await next(req);
    seen.push({ code: "ok", ms: Date.now() - started });
    return res;
  } catch (err) {
    seen.push({ code: ConnectError.from(err).code, ms: Date.now() - started });
    throw err;
  }
};

let server: http2.Http2Server;
let client: ReturnType<typeof createClient<typeof UserService>>;

before(async () => {
  const engine = createEngine({
    routes: (router) =>
      router.service(UserService, {
        // Takes userId ms and ignores its deadline (unless told to read its signal).
        async getUser(req, ctx) {
          handled++;
          if (handlerReadsSignal) assert.equal(ctx.signal.aborted, false);
          await sleep(Number(req.userId));
          return { user: { userId: req.userId } };
        },
        async *streamUserActivities(req) {
          for (let i = 1n; i <= 3n; i++) {
            await sleep(Number(req.userId));
            yield { activityId: i };
          }
        },
      }),
    interceptors: [
      record,
      createLoggingInterceptor({
        logger: {
          debug: (fields) => logged.push(fields as { code: string }),
          info: (fields) => logged.push(fields as { code: string }),
          warn: (fields) => logged.push(fields as { code: string }),
          error: (fields) => logged.push(fields as { code: string }),
        },
      }),
      // Takes its time when asked to (x-delay-ms), whatever the call's deadline.
      (next) => async (req) => {
        const delay = Number(req.header.get("x-delay-ms") ?? 0);
        if (delay > 0) await sleep(delay);
        return next(req);
      },
      createDeadlineInterceptor({ defaultTimeoutMs: defaultMs, defaultStreamTimeoutMs: defaultMs }),
    ],
    defaultDeadline: () => ({
      ms: defaultMs,
      error: () => new ConnectError("default deadline", Code.DeadlineExceeded),
    }),
    onCallStart: (values, call) => {
      values.set(callProgressKey, call);
      if (call.defaultDeadline !== 0) values.set(deadlineKey, call.defaultDeadline);
    },
  });
  server = http2.createServer();
  server.on("stream", (stream, headers) => {
    if (!engine.handleStream(stream, headers))
      stream.respond({ ":status": 404 }, { endStream: true });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  client = createClient(UserService, createGrpcTransport({ baseUrl }));
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** How many AbortControllers `body` makes (each one a call's signal made). */
async function controllersMadeBy(body: () => Promise<unknown>): Promise<number> {
  const Original = globalThis.AbortController;
  let made = 0;
  globalThis.AbortController = class extends Original {
    constructor() {
      super();
      made++;
    }
  };
  try {
    await body();
  } finally {
    globalThis.AbortController = Original;
  }
  return made;
}

describe("calls' progress told to the interceptors by the engine", () => {
  it("makes no call's signal when nothing reads it, and one when the handler does", async () => {
    handlerReadsSignal = false;
    const calls = 20;
    const unread = await controllersMadeBy(async () => {
      for (let i = 0; i < calls; i++) await client.getUser({ userId: 1n }, { timeoutMs: 5000 });
    });
    handlerReadsSignal = true;
    const read = await controllersMadeBy(async () => {
      for (let i = 0; i < calls; i++) await client.getUser({ userId: 1n }, { timeoutMs: 5000 });
    });
    handlerReadsSignal = false;
    // connect-node's client makes its own per call; the server's are the difference.
    assert.equal(read - unread, calls, `unread: ${unread}, read: ${read}`);
  });

  it("ends a unary call whose handler ignores it at the default deadline, as every interceptor sees", async () => {
    seen.length = 0;
    logged.length = 0;
    await assert.rejects(client.getUser({ userId: 1500n }), (err: unknown) => {
      assert.equal(ConnectError.from(err).code, Code.DeadlineExceeded);
      return true;
    });
    const [call] = seen;
    assert.equal(call?.code, Code.DeadlineExceeded);
    assert.ok(call.ms >= defaultMs - 10 && call.ms < 1000, `ended after ${call.ms} ms`);
    assert.equal(logged.at(-1)?.code, "DeadlineExceeded");
  });

  it("ends it at the client's shorter deadline too", async () => {
    seen.length = 0;
    await assert.rejects(client.getUser({ userId: 1500n }, { timeoutMs: 60 }));
    // The client gives up on its own timer; the server's ends the call about when it does, or
    // the client's reset reaches the server first (a loaded machine) and the call ends cancelled.
    for (let waited = 0; seen.length === 0 && waited < 1000; waited += 10) await sleep(10);
    const [call] = seen;
    assert.ok(
      [Code.DeadlineExceeded, Code.Canceled].includes(call?.code as Code),
      `ended with ${call?.code}`,
    );
    assert.ok(call !== undefined && call.ms < 1000, `ended after ${call?.ms} ms`);
  });

  it("ends a stream whose handler ignores it at its deadline, after what was sent", async () => {
    seen.length = 0;
    const got: bigint[] = [];
    await assert.rejects(
      (async () => {
        for await (const activity of client.streamUserActivities({ userId: 100n })) {
          got.push(activity.activityId);
        }
      })(),
      (err: unknown) => ConnectError.from(err).code === Code.DeadlineExceeded,
    );
    assert.deepEqual(got, [1n]);
  });

  it("refuses a call whose deadline passed before the deadline interceptor, without the handler", async () => {
    seen.length = 0;
    const before = handled;
    // An interceptor ahead of the deadline one takes 100 ms; the deadline is 30.
    await assert.rejects(
      client.getUser({ userId: 1n }, { timeoutMs: 30, headers: { "x-delay-ms": "100" } }),
    );
    for (let waited = 0; seen.length === 0 && waited < 1000; waited += 10) await sleep(10);
    // The client gives up at its deadline too: its reset can reach the server before the
    // server's own timer fires (a loaded machine), and the call ends cancelled instead.
    assert.equal(seen.length, 1);
    assert.ok(
      [Code.DeadlineExceeded, Code.Canceled].includes(seen[0]?.code as Code),
      `ended with ${seen[0]?.code}`,
    );
    await sleep(50);
    assert.equal(handled, before, "the handler never ran");
  });

  it("answers a call that ends in time, and logs it OK", async () => {
    logged.length = 0;
    const { user } = await client.getUser({ userId: 5n });
    assert.equal(user?.userId, 5n);
    assert.equal(logged.at(-1)?.code, "OK");
  });
});
