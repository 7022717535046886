import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createUserClient } from "@keel/clients";
import {
  Health,
  HealthCheckResponse_ServingStatus as Serving,
} from "@keel/gen/health/v1/health_pb";
import { runServer, servingUrl } from "./testing/process.ts";
import { mintToken } from "./testing/test-server.ts";

const dataDir = mkdtempSync(join(tmpdir(), "keel-shutdown-"));
after(() => rmSync(dataDir, { recursive: true, force: true }));

describe("graceful shutdown", () => {
  it("under load: health flips first, no unary call fails, streams end UNAVAILABLE, exit 0", async () => {
    const secret = "shutdown-test-secret-of-32-characters";
    const server = runServer({
      KEEL_DATA_DIR: dataDir,
      KEEL_PASSWORD_COST: "10",
      KEEL_JWT_SECRET: secret,
      KEEL_RATE_LIMIT_RPS: "100000",
      KEEL_RATE_LIMIT_BURST: "100000",
      // Go on serving for a moment after turning NOT_SERVING, as behind a load balancer.
      KEEL_SHUTDOWN_DELAY_MS: "700",
    });
    const url = await servingUrl(server);
    const token = await mintToken("1", ["admin"], 600, new TextEncoder().encode(secret));
    const users = createUserClient({ baseUrl: url, token });
    const { user } = await users.createUser({
      username: "loaded",
      email: "loaded@example.com",
      password: "correct horse battery",
    });
    const userId = user?.userId ?? 0n;

    const events: string[] = [];
    let serving = true;
    const watcher = (async () => {
      const health = createClient(Health, createGrpcTransport({ baseUrl: url }));
      try {
        for await (const update of health.watch({ service: "" }, { timeoutMs: 0 })) {
          if (update.status === Serving.NOT_SERVING) {
            events.push("not serving");
            serving = false;
          }
        }
      } catch (err) {
        events.push(`watch ended: ${Code[ConnectError.from(err).code]}`);
      }
    })();
    const live = (async () => {
      try {
        for await (const _ of users.streamUserActivities({ userId }, { timeoutMs: 0 })) {
          // history, then nothing until the server stops
        }
        return "ended cleanly";
      } catch (err) {
        return Code[ConnectError.from(err).code];
      }
    })();

    let ok = 0;
    const failures: string[] = [];
    // Eight callers that stop sending new calls once health says NOT_SERVING.
    const workers = Array.from({ length: 8 }, async () => {
      while (serving) {
        try {
          await users.getUser({ userId });
          ok++;
        } catch (err) {
          failures.push(String(err));
        }
      }
    });
    while (ok < 200) await new Promise((resolve) => setTimeout(resolve, 10));
    process.kill(server.child.pid as number, "SIGTERM");
    await Promise.all(workers);
    const { code } = await server.exited;
    events.push("exited");
    await watcher;

    assert.equal(code, 0);
    assert.deepEqual(failures, []);
    assert.ok(ok >= 200, `${ok} calls`);
    assert.equal(events[0], "not serving", events.join(", "));
    assert.equal(await live, "Unavailable");
  });
});
