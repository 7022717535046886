import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { UserStatus } from "@keel/gen/user/v1/user_pb";
import { createAuditInterceptor } from "./audit.ts";
import { type AuditEntry, createAuditLog } from "./audit-log.ts";
import { principalKey, requestIdKey } from "./context.ts";
import { messages, type Protocol, protocols, startTestService } from "./testing/test-service.ts";

/** Test only: the caller is whoever `x-test-subject` names; the request id is `x-request-id`. */
const fakeAuth: Interceptor = (next) => (req) => {
  const subject = req.header.get("x-test-subject");
  if (subject !== null) {
    req.contextValues.set(principalKey, {
      subject,
      userId: undefined,
      roles: [],
      tokenId: undefined,
    });
  }
  req.contextValues.set(requestIdKey, req.header.get("x-request-id") ?? "");
  return next(req);
};

const isCanceled = (err: unknown) => ConnectError.from(err).code === Code.Canceled;

const headers = (subject: string, requestId: string) => ({
  headers: { "x-test-subject": subject, "x-request-id": requestId },
});

/**
 * A real audit log writing into memory, read back line by line; every refusal written (the same
 * refusal recurs over each protocol).
 */
function memoryLog() {
  let text = "";
  const log = createAuditLog({
    summary: { intervalMs: 0 },
    destination: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        text += chunk.toString();
        callback();
      },
    }),
  });
  return {
    log,
    text: () => text,
    entries: () =>
      text
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as AuditEntry),
  };
}

/** Lets any late (duplicate) entry arrive, then returns the entries written since `from`. */
async function settle(audit: ReturnType<typeof memoryLog>, from: number) {
  await sleep(30);
  await audit.log.flush();
  return audit.entries().slice(from);
}

/** Runs a call and returns the one entry it wrote, failing if it wrote none or several. */
async function onlyEntry(audit: ReturnType<typeof memoryLog>, call: () => Promise<unknown>) {
  const from = audit.entries().length;
  await call();
  const written = await settle(audit, from);
  assert.equal(written.length, 1, `exactly one entry, got ${JSON.stringify(written)}`);
  return written[0] as AuditEntry;
}

/** Waits for the entries of a call that ends on the server after the client is told. */
async function laterEntries(audit: ReturnType<typeof memoryLog>, from: number) {
  let written: AuditEntry[] = [];
  for (let i = 0; i < 50 && written.length === 0; i++) written = await settle(audit, from);
  assert.equal(written.length, 1, `exactly one entry, got ${JSON.stringify(written)}`);
  return written[0] as AuditEntry;
}

/** A promise with its resolve function. */
function deferred() {
  let resolve: () => void = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

async function drain(stream: AsyncIterable<unknown>) {
  const received: unknown[] = [];
  for await (const message of stream) received.push(message);
  return received;
}

/** The fields every entry must have right; `time` is recent. */
function assertCommon(entry: AuditEntry, method: string, principal: string | null, reqId: string) {
  assert.equal(entry.method, `user.v1.UserService/${method}`);
  assert.equal(entry.principal, principal);
  assert.equal(entry.request_id, reqId);
  assert.equal(entry.peer, "127.0.0.1");
  assert.equal(new Date(entry.time).toISOString(), entry.time);
  assert.ok(Date.now() - Date.parse(entry.time) < 5000);
}

describe("audit interceptor", () => {
  const audit = memoryLog();
  let firstBatchMessage = deferred();
  let slowCreateStarted = deferred();
  const slowCreateRelease = deferred();
  let service: Awaited<ReturnType<typeof startTestService>>;

  before(async () => {
    service = await startTestService([fakeAuth, createAuditInterceptor({ log: audit.log })], {
      async createUser(req) {
        if (req.username === "slow") {
          slowCreateStarted.resolve();
          // Ignores the cancellation and finishes when the test lets it.
          await slowCreateRelease.promise;
        }
        if (req.username === "taken") {
          throw new ConnectError("username taken", Code.AlreadyExists);
        }
        return { user: { userId: 1n, username: req.username } };
      },
      login(req) {
        if (req.password !== "right horse battery") {
          throw new ConnectError("wrong username or password", Code.Unauthenticated);
        }
        return { accessToken: "secret-access", refreshToken: "secret-refresh", userId: 42n };
      },
      async batchUpdateUsers(requests, ctx) {
        let updatedCount = 0;
        for await (const req of requests) {
          if (req.userId === 0n)
            throw new ConnectError("user_id must be set", Code.InvalidArgument);
          if (req.userId === 99n) {
            firstBatchMessage.resolve();
            // Still at work (on the database, say) when the client cancels.
            await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
            throw ctx.signal.reason;
          }
          updatedCount++;
        }
        return { updatedCount };
      },
      async *syncUserStatus(requests) {
        for await (const req of requests) {
          if (req.userId === 13n) throw new ConnectError("not yours", Code.PermissionDenied);
          yield { userId: req.userId, status: UserStatus.ACTIVE };
        }
      },
    });
  });
  after(() => {
    slowCreateRelease.resolve();
    return service.close();
  });

  for (const protocol of protocols) {
    describe(`over ${protocol}`, () => {
      const client = () => service.client(protocol as Protocol);

      it("records a unary call with caller, request id, peer and the created user", async () => {
        const entry = await onlyEntry(audit, () =>
          client().createUser(
            { username: "ada", email: "ada@example.com", password: "hunter2-secret" },
            headers("admin-7", `create-${protocol}`),
          ),
        );
        assertCommon(entry, "CreateUser", "admin-7", `create-${protocol}`);
        assert.equal(entry.outcome, "OK");
        assert.equal(entry.error, undefined);
        assert.deepEqual(entry.targets, { user_ids: ["1"], order_ids: [] });
        assert.doesNotMatch(audit.text(), /hunter2-secret/);
        assert.doesNotMatch(audit.text(), /ada@example\.com/);
      });

      it("records a unary failure with its code and message", async () => {
        const entry = await onlyEntry(audit, () =>
          assert.rejects(
            client().createUser({ username: "taken", password: "pw-failure" }),
            /username taken/,
          ),
        );
        assertCommon(entry, "CreateUser", null, "");
        assert.equal(entry.outcome, "AlreadyExists");
        assert.equal(entry.error, "username taken");
        assert.deepEqual(entry.targets, { user_ids: [], order_ids: [] });
        assert.doesNotMatch(audit.text(), /pw-failure/);
      });

      it("records the user a login names, never the password or tokens", async () => {
        const ok = await onlyEntry(audit, () =>
          client().login({ username: "ada", password: "right horse battery" }),
        );
        assert.equal(ok.outcome, "OK");
        assert.deepEqual(ok.targets, { user_ids: ["42"], order_ids: [] });
        const failed = await onlyEntry(audit, () =>
          assert.rejects(client().login({ username: "ada", password: "wrong" })),
        );
        assert.equal(failed.outcome, "Unauthenticated");
        assert.equal(failed.error, "wrong username or password");
        assert.doesNotMatch(audit.text(), /right horse battery|secret-access|secret-refresh/);
      });

      it("writes nothing for methods that are not audited", async () => {
        const from = audit.entries().length;
        await client().getUser({ userId: 5n });
        await assert.rejects(client().getUser({ userId: 13n }));
        await drain(client().streamUserActivities({ userId: 5n }));
        assert.deepEqual(await settle(audit, from), []);
      });

      it("records a client stream once, with the users of every request", async () => {
        const entry = await onlyEntry(audit, () =>
          client().batchUpdateUsers(
            messages([
              { userId: 5n },
              { userId: 6n, user: { userId: 7n, username: "renamed" } },
              { userId: 5n },
            ]),
            headers("admin-1", `batch-${protocol}`),
          ),
        );
        assertCommon(entry, "BatchUpdateUsers", "admin-1", `batch-${protocol}`);
        assert.equal(entry.outcome, "OK");
        assert.deepEqual(entry.targets, { user_ids: ["5", "6", "7"], order_ids: [] });
        assert.doesNotMatch(audit.text(), /renamed/);
      });

      it("records a failed client stream with the users read until the failure", async () => {
        const entry = await onlyEntry(audit, () =>
          assert.rejects(
            client().batchUpdateUsers(messages([{ userId: 8n }, { userId: 0n }, { userId: 9n }])),
            /user_id must be set/,
          ),
        );
        assert.equal(entry.outcome, "InvalidArgument");
        assert.equal(entry.error, "user_id must be set");
        assert.deepEqual(entry.targets.user_ids, ["8"]);
      });

      it("keeps at most 100 ids of a kind and says it truncated", async () => {
        const updates = Array.from({ length: 150 }, (_, i) => ({ userId: BigInt(1000 + i) }));
        const entry = await onlyEntry(audit, () => client().batchUpdateUsers(messages(updates)));
        assert.equal(entry.targets.user_ids.length, 100);
        assert.deepEqual(entry.targets.user_ids.slice(0, 2), ["1000", "1001"]);
        assert.equal(entry.targets.truncated, true);
      });

      it("records a bidi stream once when it ends, with requests and responses", async () => {
        const entry = await onlyEntry(audit, async () => {
          const received = await drain(
            client().syncUserStatus(
              messages([{ userId: 2n }, { userId: 3n }, { userId: 2n }]),
              headers("admin-2", `sync-${protocol}`),
            ),
          );
          assert.equal(received.length, 3);
        });
        assertCommon(entry, "SyncUserStatus", "admin-2", `sync-${protocol}`);
        assert.equal(entry.outcome, "OK");
        assert.deepEqual(entry.targets, { user_ids: ["2", "3"], order_ids: [] });
      });

      it("records a bidi stream failing midway with its code", async () => {
        const entry = await onlyEntry(audit, () =>
          assert.rejects(
            drain(client().syncUserStatus(messages([{ userId: 4n }, { userId: 13n }]))),
            /not yours/,
          ),
        );
        assert.equal(entry.outcome, "PermissionDenied");
        assert.equal(entry.error, "not yours");
        assert.deepEqual(entry.targets.user_ids, ["4", "13"]);
      });

      it("records a client stream the client cancels", async () => {
        const from = audit.entries().length;
        firstBatchMessage = deferred();
        const abort = new AbortController();
        async function* neverEnding() {
          yield { userId: 99n };
          await new Promise(() => {});
        }
        const call = client().batchUpdateUsers(neverEnding(), { signal: abort.signal });
        await firstBatchMessage.promise;
        abort.abort();
        await assert.rejects(call, isCanceled);
        const entry = await laterEntries(audit, from);
        assert.equal(entry.method, "user.v1.UserService/BatchUpdateUsers");
        assert.equal(entry.outcome, "Canceled");
        assert.deepEqual(entry.targets.user_ids, ["99"]);
      });

      it("records a unary call when the client cancels it, not when the handler ends", async () => {
        const from = audit.entries().length;
        slowCreateStarted = deferred();
        const abort = new AbortController();
        const call = client().createUser({ username: "slow" }, { signal: abort.signal });
        await slowCreateStarted.promise;
        abort.abort();
        await assert.rejects(call, isCanceled);
        const entry = await laterEntries(audit, from);
        assert.equal(entry.method, "user.v1.UserService/CreateUser");
        assert.equal(entry.outcome, "Canceled");
      });
    });
  }
});

describe("audit interceptor with isAudited", () => {
  const audit = memoryLog();
  let service: Awaited<ReturnType<typeof startTestService>>;
  const asked: string[] = [];

  before(async () => {
    service = await startTestService(
      [
        createAuditInterceptor({
          log: audit.log,
          isAudited: (method) => {
            asked.push(method.name);
            return method.name !== "CreateUser";
          },
        }),
      ],
      {
        async *streamUserActivities(req) {
          // Live activities, until the client has seen enough.
          for (let i = 1n; ; i++) {
            yield { activityId: i, userId: req.userId, action: "user.login" };
            await sleep(5);
          }
        },
      },
    );
  });
  after(() => service.close());

  for (const protocol of protocols) {
    it(`follows isAudited, and records a server stream the client cancels, over ${protocol}`, async () => {
      const client = service.client(protocol);
      const from = audit.entries().length;
      // Breaking out of the loop would leave the call open: connect-node's client only cancels
      // through the signal.
      const abort = new AbortController();
      let received = 0;
      await assert.rejects(async () => {
        for await (const _ of client.streamUserActivities(
          { userId: 9n },
          { signal: abort.signal },
        )) {
          if (++received === 3) abort.abort();
        }
      }, isCanceled);
      const stream = await laterEntries(audit, from);
      assertCommon(stream, "StreamUserActivities", null, "");
      assert.equal(stream.outcome, "Canceled");
      assert.deepEqual(stream.targets, { user_ids: ["9"], order_ids: [] });

      const unary = await onlyEntry(audit, () => client.getUser({ userId: 11n }));
      assert.deepEqual(unary.targets.user_ids, ["11"]);
      const failed = await onlyEntry(audit, () => assert.rejects(client.getUser({ userId: 13n })));
      assert.equal(failed.outcome, "Unknown");
      assert.equal(failed.error, "unlucky");

      const before = audit.entries().length;
      await client.createUser({ username: "x" });
      assert.deepEqual(await settle(audit, before), []);
    });
  }

  it("asks once per method", () => {
    assert.deepEqual(asked.sort(), ["CreateUser", "GetUser", "StreamUserActivities"]);
  });
});
