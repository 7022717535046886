import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { createUserClient } from "@keel/clients";
import { runCli } from "./testing/run-cli.ts";
import { type ServerProcess, startServerProcess } from "./testing/server-process.ts";

const steps = [
  "CreateUser",
  "Login",
  "GetUser",
  "ListUsers",
  "CreateOrder",
  "PayOrder",
  "ShipOrder",
  "TrackOrder",
];

describe("keel client", () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServerProcess();
  });

  it("walks through every step, minting the admin token with the local configuration", async () => {
    const result = await runCli(["client", "--url", server.url], server.env);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.split("\n");
    // Each step once, numbered, in order.
    const numbered = lines.filter((line) => /^ *\d+\. /.test(line));
    assert.deepEqual(
      numbered.map((line) => line.trim().split(/\s+/).slice(0, 2)),
      steps.map((step, i) => [`${i + 1}.`, step]),
    );
    assert.match(result.stdout, /1\. CreateUser +user \d+ "walkthrough-\w+" <.*>, ACTIVE/);
    assert.match(result.stdout, /admin token: minted for user \d+/);
    assert.match(result.stdout, /5\. CreateOrder +order \d+ .*total 44\.99 USD, PENDING_PAYMENT/);
    assert.match(result.stdout, /6\. PayOrder +order \d+ PAID, payment \d+ of 44\.99 USD/);
    assert.match(result.stdout, /7\. ShipOrder +order \d+ SHIPPED with DHL/);
    // TrackOrder: the history, then the carrier's checkpoints live, until delivered.
    const events = lines
      .filter((line) => line.includes("← #"))
      .map((line) => /← #\d+ (\w+)/.exec(line)?.[1]);
    assert.deepEqual(events, ["CREATED", "PAID", "SHIPPED", "CHECKPOINT", "DELIVERED"]);
    assert.match(result.stdout, /the stream ended after 5 events: order \d+ is delivered/);
    assert.match(result.stdout, /^done: 8 steps in [\d.]+ s$/m);
  });

  it("waits as the server asks when sign-ups from this address are rate limited", async () => {
    // One sign-up at once, then one every 3 s; a sign-up of its own just before takes it.
    const limited = await startServerProcess({
      KEEL_CREATE_USER_RATE_LIMIT_PER_MINUTE: "20",
      KEEL_CREATE_USER_RATE_LIMIT_BURST: "1",
    });
    await createUserClient({ baseUrl: limited.url }).createUser({
      username: "ada",
      email: "ada@example.com",
      password: "correct horse battery",
    });
    const again = await runCli(["client", "--url", limited.url], limited.env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /8\. TrackOrder/);
    assert.match(
      again.stderr,
      /^keel client: CreateUser is rate limited for this address; waiting as the server asks \(\d+\.\d s, and again if needed\)\n/,
    );
  });

  it("takes the admin token from --admin-token, in another protocol", async () => {
    const token = await runCli(["token", "--user-id", "1", "--roles", "admin"], server.env);
    const result = await runCli([
      "client",
      "--url",
      server.url,
      "--protocol",
      "connect",
      "--admin-token",
      token.stdout.trim(),
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stdout, /minted/);
    assert.match(result.stdout, /^done: 8 steps/m);
  });

  it("exits 1 naming the step that failed and why", async () => {
    const result = await runCli(["client", "--url", server.url, "--admin-token", "not-a-token"]);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /3\. GetUser/);
    assert.match(result.stderr, /^keel client: ListUsers failed: \[unauthenticated\]/);
  });
});
