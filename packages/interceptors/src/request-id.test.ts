import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type CallOptions, type Client, Code, ConnectError } from "@connectrpc/connect";
import type { UserService } from "@keel/gen/user/v1/user_pb";
import { requestIdKey } from "./context.ts";
import { createRecoveryInterceptor } from "./recovery.ts";
import { createRequestIdInterceptor, newRequestId } from "./request-id.ts";
import { messages, protocols, startTestService } from "./testing/test-service.ts";

type Kind = "unary" | "server_stream" | "client_stream" | "bidi_stream";
const kinds: Kind[] = ["unary", "server_stream", "client_stream", "bidi_stream"];
const handlerOf: Record<Kind, string> = {
  unary: "GetUser",
  server_stream: "StreamUserActivities",
  client_stream: "BatchUpdateUsers",
  bidi_stream: "SyncUserStatus",
};

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Makes a call of the given kind to completion; returns the response headers. */
async function call(
  client: Client<typeof UserService>,
  kind: Kind,
  headers: Record<string, string> = {},
): Promise<Headers> {
  let header = new Headers();
  const options: CallOptions = { headers, onHeader: (h) => (header = h) };
  switch (kind) {
    case "unary":
      await client.getUser({ userId: 1n }, options);
      break;
    case "server_stream":
      for await (const _ of client.streamUserActivities({ userId: 1n }, options));
      break;
    case "client_stream":
      await client.batchUpdateUsers(messages([{ userId: 1n }, { userId: 2n }]), options);
      break;
    case "bidi_stream":
      for await (const _ of client.syncUserStatus(messages([{ userId: 1n }]), options));
      break;
  }
  return header;
}

/** Makes a call that must fail; returns its error. */
async function failingCall(
  client: Client<typeof UserService>,
  kind: Kind,
  headers: Record<string, string> = {},
): Promise<ConnectError> {
  try {
    await call(client, kind, headers);
  } catch (err) {
    assert.ok(err instanceof ConnectError, `a ConnectError, got ${String(err)}`);
    return err;
  }
  assert.fail(`the ${kind} call succeeded`);
}

describe("request id interceptor", () => {
  let svc: Awaited<ReturnType<typeof startTestService>>;
  before(async () => {
    svc = await startTestService([createRequestIdInterceptor()]);
  });
  after(() => svc.close());

  /** The request id the handler of the last call found in its context values. */
  function lastSeenId(kind: Kind): string {
    const last = svc.seen.at(-1);
    assert.equal(last?.method, handlerOf[kind]);
    return last.ctx.values.get(requestIdKey);
  }

  for (const protocol of protocols) {
    for (const kind of kinds) {
      it(`${protocol} ${kind}: echoes a valid incoming id and hands it to the handler`, async () => {
        const id = `req-${protocol}-${kind}:A.b/c+d=e_0`;
        const header = await call(svc.client(protocol), kind, { "x-request-id": id });
        assert.equal(header.get("x-request-id"), id);
        assert.equal(lastSeenId(kind), id);
      });

      it(`${protocol} ${kind}: replaces an invalid id by a new UUID`, async () => {
        for (const invalid of ["x".repeat(129), "a b", "id;drop", "<script>", "a,b"]) {
          const header = await call(svc.client(protocol), kind, { "x-request-id": invalid });
          const id = header.get("x-request-id");
          assert.match(String(id), uuid, `for ${JSON.stringify(invalid)}`);
          assert.equal(lastSeenId(kind), id);
        }
      });

      it(`${protocol} ${kind}: creates a new UUID when the call has none`, async () => {
        const first = (await call(svc.client(protocol), kind)).get("x-request-id");
        assert.match(String(first), uuid);
        assert.equal(lastSeenId(kind), first);
        const second = (await call(svc.client(protocol), kind)).get("x-request-id");
        assert.match(String(second), uuid);
        assert.notEqual(second, first);
      });
    }

    it(`${protocol}: accepts an id of exactly 128 characters`, async () => {
      const id = "a".repeat(128);
      const header = await call(svc.client(protocol), "unary", { "x-request-id": id });
      assert.equal(header.get("x-request-id"), id);
    });
  }
});

describe("request id interceptor on failed calls", () => {
  let svc: Awaited<ReturnType<typeof startTestService>>;
  before(async () => {
    svc = await startTestService([createRequestIdInterceptor(), createRecoveryInterceptor()], {
      getUser(req) {
        if (req.userId === 13n) throw new Error("a plain error, turned into INTERNAL by recovery");
        if (req.userId === 14n) {
          const relayed = new ConnectError("user service unavailable", Code.Unavailable);
          relayed.isWireError = true; // as if received from another service and rethrown
          throw relayed;
        }
        throw new ConnectError("no such user", Code.NotFound);
      },
      async *streamUserActivities(req) {
        yield { activityId: 1n, userId: req.userId, action: "user.login" };
        throw new ConnectError("activity log unavailable", Code.Aborted);
      },
      async batchUpdateUsers(requests) {
        for await (const _ of requests);
        throw new ConnectError("batch rejected", Code.FailedPrecondition);
      },
      async *syncUserStatus(requests) {
        for await (const req of requests) yield { userId: req.userId };
        throw new ConnectError("sync stopped", Code.ResourceExhausted);
      },
    });
  });
  after(() => svc.close());

  const expectedCode: Record<Kind, Code> = {
    unary: Code.NotFound,
    server_stream: Code.Aborted,
    client_stream: Code.FailedPrecondition,
    bidi_stream: Code.ResourceExhausted,
  };

  for (const protocol of protocols) {
    for (const kind of kinds) {
      it(`${protocol} ${kind}: the error carries the id once`, async () => {
        const id = `failed-${protocol}-${kind}`;
        const err = await failingCall(svc.client(protocol), kind, { "x-request-id": id });
        assert.equal(err.code, expectedCode[kind]);
        assert.equal(err.metadata.get("x-request-id"), id);
      });
    }

    it(`${protocol}: a new id reaches the client of a failed call`, async () => {
      const err = await failingCall(svc.client(protocol), "unary");
      assert.match(String(err.metadata.get("x-request-id")), uuid);
    });

    it(`${protocol}: an unexpected error turned into INTERNAL by recovery carries the id`, async () => {
      const client = svc.client(protocol);
      const headers = { "x-request-id": "plain-error" };
      await assert.rejects(client.getUser({ userId: 13n }, { headers }), (err: unknown) => {
        assert.ok(err instanceof ConnectError);
        assert.equal(err.code, Code.Internal);
        assert.equal(err.metadata.get("x-request-id"), "plain-error");
        return true;
      });
    });

    it(`${protocol}: an error relayed from another service carries the id and keeps its code`, async () => {
      const client = svc.client(protocol);
      const headers = { "x-request-id": "relayed-error" };
      await assert.rejects(client.getUser({ userId: 14n }, { headers }), (err: unknown) => {
        assert.ok(err instanceof ConnectError);
        assert.equal(err.code, Code.Unavailable);
        assert.equal(err.rawMessage, "user service unavailable");
        assert.equal(err.metadata.get("x-request-id"), "relayed-error");
        return true;
      });
    });
  }
});

describe("request id interceptor options", () => {
  let svc: Awaited<ReturnType<typeof startTestService>>;
  let generated = 0;
  before(async () => {
    svc = await startTestService([
      createRequestIdInterceptor({
        header: "X-Correlation-Id",
        generate: () => `gen-${++generated}`,
      }),
    ]);
  });
  after(() => svc.close());

  it("reads and writes the configured header and uses the configured generator", async () => {
    const client = svc.client("connect");
    const own = await call(client, "unary", { "x-correlation-id": "mine" });
    assert.equal(own.get("x-correlation-id"), "mine");
    assert.equal(own.get("x-request-id"), null);
    const ignored = await call(client, "server_stream", { "x-request-id": "not-this-one" });
    assert.equal(ignored.get("x-correlation-id"), "gen-1");
    assert.equal(svc.seen.at(-1)?.ctx.values.get(requestIdKey), "gen-1");
  });
});

describe("newRequestId", () => {
  it("makes random version 4 UUIDs, none twice, across refills of its random pool", () => {
    const seen = new Set<string>();
    // 256 ids per pool: this crosses it more than twenty times.
    for (let i = 0; i < 6000; i++) {
      const id = newRequestId();
      assert.match(id, uuid);
      seen.add(id);
    }
    assert.equal(seen.size, 6000);
    // Every digit position varies (but the version's): not a counter, not a fixed part.
    const ids = [...seen];
    for (let at = 0; at < 36; at++) {
      if ([8, 13, 14, 18, 23].includes(at)) continue;
      const digits = new Set(ids.map((id) => id[at]));
      assert.ok(digits.size >= (at === 19 ? 4 : 16), `position ${at}: ${[...digits].join("")}`);
    }
  });
});
