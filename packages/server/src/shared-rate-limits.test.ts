import assert from "node:assert/strict";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createUserClient } from "@keel/clients";
import {
  dropSchema,
  freshSchema,
  lockTable,
  postgresSkipReason,
  postgresUrl,
} from "@keel/store/testing";
import { eventually } from "./testing/nginx.ts";
import { runServer, servingUrl } from "./testing/process.ts";
import { codeOf } from "./testing/rpc.ts";
import { mintToken } from "./testing/test-server.ts";

// Two server processes on one PostgreSQL database with shared rate limits: one caller's budget
// holds across both. Skipped only outside CI when no PostgreSQL is reachable; in CI that fails.
const skip = await postgresSkipReason();

describe("rate limits shared by two instances on PostgreSQL", { skip: skip ?? false }, () => {
  const schema = freshSchema();
  const secret = "a shared secret of at least 32 characters";
  const key = new TextEncoder().encode(secret);
  let urlA = "";
  let urlB = "";

  before(async () => {
    const env = {
      KEEL_DATABASE_URL: postgresUrl,
      KEEL_DATABASE_SCHEMA: schema,
      KEEL_JWT_SECRET: secret,
      KEEL_SHARED_RATE_LIMITS: "true",
      // Ten calls, then one every 100 seconds: nothing refills while the test runs.
      KEEL_RATE_LIMIT_RPS: "0.01",
      KEEL_RATE_LIMIT_BURST: "10",
    };
    [urlA, urlB] = await Promise.all([
      servingUrl(runServer({ ...env, KEEL_SHARED_RATE_LIMITS_WHEN_UNAVAILABLE: "refuse" })),
      servingUrl(runServer({ ...env, KEEL_SHARED_RATE_LIMITS_WHEN_UNAVAILABLE: "local" })),
    ]);
  });
  after(() => dropSchema(schema));

  it("gives a caller one budget over both instances, not one each", async () => {
    const token = await mintToken("ops", ["admin"], 600, key);
    const a = createUserClient({ baseUrl: urlA, token });
    const b = createUserClient({ baseUrl: urlB, token });
    const outcomes: string[] = [];
    for (let i = 0; i < 12; i++) {
      outcomes.push(await codeOf(a.listUsers({})), await codeOf(b.listUsers({})));
    }
    assert.equal(outcomes.filter((o) => o === "ok").length, 10, outcomes.join(" "));
    assert.deepEqual(outcomes.slice(10), Array(14).fill("ResourceExhausted"));
    const err = await b.listUsers({}).catch((e: unknown) => ConnectError.from(e));
    assert.ok(err instanceof ConnectError);
    assert.match(
      err.rawMessage,
      /^rate limit of 0\.6 requests per minute for user\.v1\.UserService\/ListUsers exceeded; retry in \d+\.\ds$/,
    );
    // Another caller has a budget of their own.
    const other = createUserClient({
      baseUrl: urlA,
      token: await mintToken("other", ["admin"], 600, key),
    });
    assert.equal(await codeOf(other.listUsers({})), "ok");
  });

  it("refuses or counts locally, as configured, while the database does not answer", async () => {
    // Every statement on the buckets now waits.
    const release = await lockTable(schema, "rate_buckets");
    try {
      const token = await mintToken("during-outage", ["admin"], 600, key);
      const a = createUserClient({ baseUrl: urlA, token });
      const b = createUserClient({ baseUrl: urlB, token });
      const refused = await a.listUsers({}).catch((e: unknown) => ConnectError.from(e));
      assert.ok(refused instanceof ConnectError);
      assert.equal(refused.code, Code.Unavailable);
      assert.equal(refused.rawMessage, "rate limits cannot be checked right now; retry shortly");
      assert.equal(await codeOf(b.listUsers({})), "ok");
    } finally {
      await release();
    }
  });
});

describe("rate limits shared by the workers of a cluster", { skip: skip ?? false }, () => {
  const schema = freshSchema();
  after(() => dropSchema(schema));

  it("gives a caller one budget over all workers", async () => {
    const secret = "a cluster secret of at least 32 characters";
    const server = runServer({
      KEEL_DATABASE_URL: postgresUrl,
      KEEL_DATABASE_SCHEMA: schema,
      KEEL_JWT_SECRET: secret,
      KEEL_WORKERS: "2",
      KEEL_SHARED_RATE_LIMITS: "true",
      KEEL_RATE_LIMIT_RPS: "0.01",
      KEEL_RATE_LIMIT_BURST: "8",
      // Every call's log line, naming the worker that answered it.
      KEEL_LOG_LEVEL: "debug",
    });
    let port = 0;
    const workers = new Set<number>();
    const answeredBy: number[] = [];
    const lines = createInterface({ input: server.child.stdout as NodeJS.ReadableStream });
    const serving = new Promise<void>((resolve) => {
      lines.on("line", (line) => {
        const entry = JSON.parse(line) as {
          msg?: string;
          port?: number;
          worker?: number;
          method?: string;
        };
        if (entry.msg === "serving gRPC, gRPC-Web and Connect" && entry.worker !== undefined) {
          port = entry.port ?? 0;
          workers.add(entry.worker);
          if (workers.size === 2) resolve();
        }
        if (entry.method === "user.v1.UserService/ListUsers" && entry.worker !== undefined) {
          answeredBy.push(entry.worker);
        }
      });
    });
    await serving;
    const token = await mintToken("ops", ["admin"], 600, new TextEncoder().encode(secret));
    const outcomes: string[] = [];
    // Separate clients make separate connections, which the workers take in turns.
    for (let i = 0; i < 12; i++) {
      const client = createUserClient({ baseUrl: `http://127.0.0.1:${port}`, token });
      outcomes.push(await codeOf(client.listUsers({})));
    }
    assert.equal(outcomes.filter((o) => o === "ok").length, 8, outcomes.join(" "));
    await eventually("a log line per call", () => (answeredBy.length === 12 ? true : undefined));
    assert.equal(new Set(answeredBy).size, 2, "both workers answered calls");
    if (server.child.pid !== undefined) process.kill(server.child.pid, "SIGTERM");
    await server.exited;
  });
});
