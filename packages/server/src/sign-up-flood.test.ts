import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createUserClient } from "@keel/clients";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { outcomeOf } from "./testing/rpc.ts";
import { startTestServer, type TestServer } from "./testing/test-server.ts";

// One client floods CreateUser from 127.0.0.2 while a user logs in from 127.0.0.1. Password
// hashing is shared fairly between addresses: the flood gets its share and is refused the rest,
// and the login goes through. (How long it waits is measured by bench/src/sign-up-flood.ts.)
let server: TestServer;
const password = "correct horse battery";
before(async () => {
  server = await startTestServer({
    passwordHashing: { concurrency: 1, maxQueued: 16, perCaller: 2 },
  });
  await createUserClient({ baseUrl: server.url }).createUser({
    username: "victim",
    email: "victim@example.com",
    password,
  });
});
after(() => server.stop());

function floodClient() {
  return createClient(
    UserService,
    createGrpcTransport({
      baseUrl: server.url,
      // Another loopback address: another client, as far as per-address shares go.
      nodeOptions: {
        createConnection: () =>
          connect({ host: "127.0.0.1", port: server.port, localAddress: "127.0.0.2" }),
      },
    }),
  );
}

describe("a sign-up flood from one address", () => {
  it("is refused past its share of password hashing, while another address logs in", async () => {
    const flood = floodClient();
    const floodCalls = Array.from({ length: 20 }, (_, i) =>
      outcomeOf(
        flood.createUser({ username: `flood${i}`, email: `flood${i}@example.com`, password }),
      ),
    );
    const login = outcomeOf(
      createUserClient({ baseUrl: server.url }).login({ username: "victim", password }),
    );
    assert.equal(await login, "ok");
    const results = await Promise.all(floodCalls);
    const refused = results.filter((r) => r !== "ok");
    assert.ok(results.includes("ok"), "the flood's share is served");
    assert.ok(refused.length >= 10, `only ${refused.length} of 20 refused`);
    for (const r of refused) {
      assert.match(
        r,
        /^ResourceExhausted: password hashing is busy: this client already has 2 requests waiting; wait for them to finish$/,
      );
    }
  });

  it("answers a taken username without hashing: no share is used", async () => {
    const flood = floodClient();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        outcomeOf(
          flood.createUser({ username: "VICTIM", email: `other${i}@example.com`, password }),
        ),
      ),
    );
    assert.deepEqual(
      new Set(results),
      new Set(["AlreadyExists: username: already taken; choose another"]),
    );
  });
});
