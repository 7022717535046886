import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ConnectError, createClient } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus } from "@keel/gen/health/v1/health_pb";
import { createTransport, createUserClient } from "./index.ts";
import { type ServerProcess, serverCommand, startServerProcess } from "./testing/server-process.ts";

const certs = mkdtempSync(join(tmpdir(), "keel-clients-tls-"));
after(() => rmSync(certs, { recursive: true, force: true }));
const pem = (name: string) => readFileSync(join(certs, name));

describe("clients of a mutual-TLS server", () => {
  let server: ServerProcess;
  before(async () => {
    await serverCommand(["certs", "--out", certs]);
    server = await startServerProcess({
      KEEL_TLS_CERT: join(certs, "server.pem"),
      KEEL_TLS_KEY: join(certs, "server-key.pem"),
      KEEL_TLS_CLIENT_CA: join(certs, "ca.pem"),
    });
  });

  it("call it with tls: { ca, cert, key }, balanced or plain, over HTTP/2 and HTTP/1.1", async () => {
    const tls = { ca: pem("ca.pem"), cert: pem("client.pem"), key: pem("client-key.pem") };
    const users = createUserClient({ endpoints: [server.url, server.url], tls });
    const { user } = await users.createUser({
      username: "tls-user",
      email: "tls-user@example.com",
      password: "correct horse battery",
    });
    assert.equal(user?.username, "tls-user");
    for (const httpVersion of ["2", "1.1"] as const) {
      const health = createClient(
        Health,
        createTransport({ baseUrl: server.url, protocol: "connect", httpVersion, tls }),
      );
      assert.equal(
        (await health.check({})).status,
        HealthCheckResponse_ServingStatus.SERVING,
        `HTTP/${httpVersion}`,
      );
    }
  });

  it("fail without the CA, or without a client certificate, saying so", async () => {
    for (const tls of [undefined, { ca: pem("ca.pem") }]) {
      const users = createUserClient({
        baseUrl: server.url,
        retry: false,
        ...(tls ? { tls } : {}),
      });
      await assert.rejects(users.getUser({ userId: 1n }), (err) => {
        assert.match(ConnectError.from(err).message, /certificate/);
        return true;
      });
    }
  });
});
