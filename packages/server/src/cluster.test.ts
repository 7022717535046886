import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, describe, it } from "node:test";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { createUserClient } from "@keel/clients";
import { UserStatus, type UserStatusUpdateSchema } from "@keel/gen/user/v1/user_pb";
import { runServer } from "./testing/process.ts";
import { pushable, take } from "./testing/rpc.ts";
import { mintToken } from "./testing/test-server.ts";

const dataDir = mkdtempSync(join(tmpdir(), "keel-cluster-"));
after(() => rmSync(dataDir, { recursive: true, force: true }));

describe("cluster mode", () => {
  it("runs workers on one port, sums their metrics, shares live events, and stops them all", async () => {
    const secret = "cluster-test-secret-of-32-characters!";
    const server = runServer({
      KEEL_DATA_DIR: dataDir,
      KEEL_PASSWORD_COST: "10",
      KEEL_JWT_SECRET: secret,
      KEEL_WORKERS: "2",
    });
    let port = 0;
    let adminPort = 0;
    const workers = new Set<number>();
    const lines = createInterface({ input: server.child.stdout as NodeJS.ReadableStream });
    for await (const line of lines) {
      const entry = JSON.parse(line) as {
        msg?: string;
        port?: number;
        adminPort?: number;
        worker?: number;
      };
      if (entry.msg === "cluster started") adminPort = entry.adminPort ?? 0;
      if (entry.msg === "serving gRPC, gRPC-Web and Connect" && entry.worker !== undefined) {
        port = entry.port ?? 0;
        workers.add(entry.worker);
      }
      if (adminPort > 0 && workers.size === 2) break;
    }
    assert.equal(workers.size, 2);
    const url = `http://127.0.0.1:${port}`;
    const token = await mintToken("1", ["admin"], 600, new TextEncoder().encode(secret));
    // Separate clients make separate connections, which the workers take in turns.
    const a = createUserClient({ baseUrl: url, token });
    const b = createUserClient({ baseUrl: url, token });
    const { user } = await a.createUser({
      username: "clustered",
      email: "clustered@example.com",
      password: "correct horse battery",
    });
    const userId = user?.userId ?? 0n;

    const followerOut = pushable<MessageInitShape<typeof UserStatusUpdateSchema>>();
    const controller = new AbortController();
    const follower = b
      .syncUserStatus(followerOut, { signal: controller.signal, timeoutMs: 0 })
      [Symbol.asyncIterator]();
    followerOut.push({ userId });
    assert.equal((await take(follower, 1))[0]?.status, UserStatus.ACTIVE);
    const updaterOut = pushable<MessageInitShape<typeof UserStatusUpdateSchema>>();
    const updater = a.syncUserStatus(updaterOut, { timeoutMs: 0 })[Symbol.asyncIterator]();
    updaterOut.push({ userId, status: UserStatus.INACTIVE });
    assert.equal((await take(follower, 1))[0]?.status, UserStatus.INACTIVE);
    updaterOut.end();
    await updater.next();
    controller.abort();

    for (let i = 0; i < 10; i++) await (i % 2 === 0 ? a : b).getUser({ userId });
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    const started = /^grpc_server_started_total\{[^}]*grpc_method="GetUser"[^}]*\} (\d+)$/m.exec(
      metrics,
    );
    assert.equal(started?.[1], "10", "GetUser calls summed over both workers");
    assert.equal((await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status, 200);

    process.kill(server.child.pid as number, "SIGTERM");
    const exited = await server.exited;
    assert.equal(exited.code, 0, exited.stderr);
  });
});
