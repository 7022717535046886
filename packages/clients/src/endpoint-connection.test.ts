import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { createClient } from "@connectrpc/connect";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { createEndpointConnection } from "./endpoint-connection.ts";
import { type FakeServer, startFakeServer } from "./testing/fake-server.ts";

let server: FakeServer;
after(() => server.close());

describe("endpoint connection", () => {
  it("probes whether the endpoint accepts connections", async () => {
    server = await startFakeServer((router) =>
      router.service(UserService, { getUser: (req) => ({ user: { userId: req.userId } }) }),
    );
    assert.equal(await createEndpointConnection(server.url, {}).probe(), true);
    const gone = await startFakeServer(() => {});
    await gone.close();
    assert.equal(await createEndpointConnection(gone.url, {}).probe(), false);
  });

  it("tells when the server sends GOAWAY, and survives a call made right after it", async () => {
    const connection = createEndpointConnection(server.url, {});
    const goaway = new Promise<void>((resolve) => connection.onGoaway(resolve));
    const users = createClient(UserService, connection.transport);
    assert.equal((await users.getUser({ userId: 3n })).user?.userId, 3n);
    server.goaway();
    await goaway;
    // connect-node destroys the connection; without our listener its late error would crash us.
    assert.equal((await users.getUser({ userId: 4n })).user?.userId, 4n, "a new connection");
    connection.close();
  });
});
