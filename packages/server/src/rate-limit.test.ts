import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { durationMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { createUserClient } from "@keel/clients";
import { RetryInfoSchema } from "@keel/gen/errdetails/v1/errdetails_pb";
import { pino } from "pino";
import { mintToken, startTestServer, type TestServer } from "./testing/test-server.ts";

let server: TestServer;
before(async () => {
  server = await startTestServer({
    rateLimits: {
      default: { ratePerSecond: 5, burst: 3 },
      methods: {
        "user.v1.UserService/Login": { ratePerSecond: 1 / 60, burst: 2 },
        "user.v1.UserService/CreateUser": { ratePerSecond: 1 / 60, burst: 2 },
      },
    },
  });
});
after(() => server.stop());

/** Calls until one is refused, and returns how many passed and the refusal. */
async function burst(
  call: () => Promise<unknown>,
): Promise<{ passed: number; error: ConnectError }> {
  for (let passed = 0; passed < 100; passed++) {
    try {
      await call();
    } catch (err) {
      return { passed, error: ConnectError.from(err) };
    }
  }
  throw new Error("never limited");
}

describe("rate limits on the server", () => {
  it("refuses a burst above the limit with a readable delay, then serves again after it", async () => {
    const client = createUserClient({ baseUrl: server.url, token: server.adminToken });
    const { passed, error } = await burst(() => client.listUsers({}));
    assert.ok(passed >= 3, `${passed} passed`);
    assert.equal(error.code, Code.ResourceExhausted);
    assert.match(error.rawMessage, /retry in/);
    const [info] = error.findDetails(RetryInfoSchema);
    assert.ok(info?.retryDelay);
    const delay = durationMs(info.retryDelay);
    assert.ok(delay > 0 && delay <= 1000, `retry in ${delay} ms`);
    assert.equal(error.metadata.get("retry-after"), "1");
    await sleep(delay + 50);
    await client.listUsers({});
  });

  it("limits login attempts per address, whoever they claim to be, more strictly", async () => {
    const client = createUserClient({ baseUrl: server.url });
    const attempts = ["alice", "bob", "carol"].map(
      (username) => () => client.login({ username, password: "guessing" }),
    );
    const results = [];
    for (const attempt of attempts)
      results.push(await attempt().catch((err: unknown) => ConnectError.from(err).code));
    assert.deepEqual(results, [Code.Unauthenticated, Code.Unauthenticated, Code.ResourceExhausted]);
  });

  it("limits sign-ups per address, whatever token comes with them", async () => {
    const results = [];
    for (const n of [1, 2, 3]) {
      // A new caller each time, as far as tokens go: the budget is still the address's.
      const client = createUserClient({
        baseUrl: server.url,
        token: await mintToken(`signer${n}`, []),
      });
      results.push(
        await client
          .createUser({
            username: `signup${n}`,
            email: `s${n}@example.com`,
            password: "long enough",
          })
          .then(
            () => "created",
            (err: unknown) => ConnectError.from(err).rawMessage,
          ),
      );
    }
    assert.deepEqual(results.slice(0, 2), ["created", "created"]);
    assert.match(
      results[2] ?? "",
      /^rate limit of 1 request per minute for user\.v1\.UserService\/CreateUser exceeded/,
    );
  });
});

describe("refused calls in the server's log", () => {
  it("a flood past the rate limit costs one line and a count, not a line per refusal", async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { level: "info" },
      { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const flooded = await startTestServer({
      logger,
      rateLimits: { default: { ratePerSecond: 0.001, burst: 2 } },
    });
    const client = createUserClient({ baseUrl: flooded.url, token: flooded.adminToken });
    let refused = 0;
    try {
      for (let i = 0; i < 40; i++) {
        await client.listUsers({}).catch((err: unknown) => {
          assert.equal(ConnectError.from(err).code, Code.ResourceExhausted);
          refused++;
        });
      }
    } finally {
      // Stopping writes the interval's summary: nothing counted is lost at shutdown.
      await flooded.stop();
    }
    assert.equal(refused, 38);
    const finished = lines.filter(
      (l) => l.msg === "finished call" && l.code === "ResourceExhausted",
    );
    assert.equal(finished.length, 1, "one line for the first refusal");
    const summaries = lines.filter((l) => l.msg === "refused calls, summarised");
    assert.equal(summaries.length, 1);
    assert.equal(summaries[0]?.method, "user.v1.UserService/ListUsers");
    assert.equal(summaries[0]?.code, "ResourceExhausted");
    assert.equal(summaries[0]?.count, 37);
    assert.equal(summaries[0]?.interval_ms, 10_000);
  });
});
