import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createUserClient } from "@keel/clients";
import { auditLines } from "./testing/audit-lines.ts";
import { freePort } from "./testing/free-port.ts";
import { restFrom, userClientFrom } from "./testing/from-address.ts";
import { eventually, findNginx, type Nginx, nginxConfig, startNginx } from "./testing/nginx.ts";
import { followLogs, runServer, servingUrl } from "./testing/process.ts";

// deploy/nginx/nginx.conf in front of an instance that trusts it (KEEL_TRUSTED_PROXIES): clients
// on different addresses (127.0.0.x: loopback takes any of them) reach it through nginx, which
// connects from 127.0.0.1 and appends the address it sees to X-Forwarded-For.

const found = findNginx();
const password = "correct horse battery";
/** A status per attempt: a gRPC code, or the HTTP status of a REST call. */
type Outcome = Code | number;

describe("nginx (deploy/nginx/nginx.conf) in front of an instance that trusts it", {
  skip: found.skip ?? false,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), "keel-nginx-client-"));
  // Run as root, nginx's workers are `nobody`: they must reach their temp directories.
  chmodSync(dir, 0o755);
  const auditPath = join(dir, "instance", "audit.log");
  let proxy: Nginx | undefined;
  let viaNginx = "";
  let direct = "";
  let logs: Record<string, unknown>[] = [];

  before(async () => {
    const server = runServer({
      KEEL_DATA_DIR: join(dir, "instance"),
      KEEL_JWT_SECRET: "a secret for the client address test, 32+ characters",
      KEEL_PASSWORD_COST: "10",
      KEEL_LOG_LEVEL: "debug",
      KEEL_TRUSTED_PROXIES: "127.0.0.1",
      // Two guesses, then one a minute.
      KEEL_LOGIN_RATE_LIMIT_BURST: "2",
      KEEL_LOGIN_RATE_LIMIT_PER_MINUTE: "1",
      // Every refusal on its own line: repeated ones of a caller are otherwise summarised.
      KEEL_AUDIT_LOG_SUMMARY_INTERVAL_MS: "0",
    });
    direct = await servingUrl(server);
    logs = followLogs(server);
    await createUserClient({ baseUrl: direct }).createUser({
      username: "ada",
      email: "ada@example.com",
      password,
    });
    const port = await freePort();
    const conf = nginxConfig(port, [new URL(direct).host], dir);
    proxy = await startNginx(found.nginx ?? "", dir, conf, port);
    viaNginx = `http://127.0.0.1:${port}`;
  });

  after(async () => {
    await proxy?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Three wrong-password Logins from `from` through `baseUrl`, over `protocol`. */
  async function guess(
    baseUrl: string,
    from: string,
    protocol: "grpc" | "connect" | "grpc-web" | "rest",
    headers: Record<string, string> = {},
    attempts = 3,
  ): Promise<Outcome[]> {
    const outcomes: Outcome[] = [];
    for (let n = 0; n < attempts; n++) {
      const requestId = `${from}-${protocol}-${n}`;
      const h = { ...headers, "x-request-id": requestId };
      if (protocol === "rest") {
        const res = await restFrom(baseUrl, {
          method: "POST",
          path: "/api/v1/auth/login",
          body: { username: "ada", password: "wrong" },
          headers: h,
          localAddress: from,
          httpVersion: "2",
        });
        outcomes.push(res.status);
        continue;
      }
      const client = userClientFrom(baseUrl, from, protocol);
      outcomes.push(
        await client.login({ username: "ada", password: "wrong" }, { headers: h }).then(
          () => Code.Unknown,
          (err: unknown) => ConnectError.from(err).code,
        ),
      );
    }
    return outcomes;
  }

  /** The peers of the audit lines of Login, once `count` of them are written. */
  async function auditedPeers(count: number): Promise<string[]> {
    const lines = await eventually(`${count} audit lines`, () => {
      if (!existsSync(auditPath)) return count === 0 ? [] : undefined;
      const all = auditLines(auditPath) as { method: string; peer: string }[];
      const logins = all.filter((l) => l.method === "user.v1.UserService/Login");
      return logins.length >= count ? logins : undefined;
    });
    return lines.map((l) => l.peer);
  }

  /** The peer of the instance's access log line of a call. */
  async function loggedPeer(requestId: string): Promise<unknown> {
    const line = await eventually(`the log line of ${requestId}`, () =>
      logs.find((l) => l.request_id === requestId),
    );
    return line.peer;
  }

  const limited = [Code.Unauthenticated, Code.Unauthenticated, Code.ResourceExhausted];

  it("gives each client its own Login budget over every protocol, and audits and logs its address", async () => {
    assert.deepEqual(await guess(viaNginx, "127.0.0.2", "grpc"), limited);
    assert.deepEqual(await guess(viaNginx, "127.0.0.3", "connect"), limited);
    assert.deepEqual(await guess(viaNginx, "127.0.0.4", "grpc-web"), limited);
    assert.deepEqual(await guess(viaNginx, "127.0.0.5", "rest"), [401, 401, 429]);
    assert.deepEqual(await auditedPeers(12), [
      ...Array(3).fill("127.0.0.2"),
      ...Array(3).fill("127.0.0.3"),
      ...Array(3).fill("127.0.0.4"),
      ...Array(3).fill("127.0.0.5"),
    ]);
    assert.equal(await loggedPeer("127.0.0.2-grpc-0"), "127.0.0.2");
    assert.equal(await loggedPeer("127.0.0.5-rest-2"), "127.0.0.5");
  });

  it("keeps what a client writes into X-Forwarded-For itself out: nginx appends what it sees", async () => {
    // 127.0.0.6 claims to be 127.0.0.2, whose budget is spent; it still has its own.
    const claim = { "x-forwarded-for": "127.0.0.2" };
    const seen = (await auditedPeers(0)).length;
    assert.deepEqual(await guess(viaNginx, "127.0.0.6", "grpc", claim, 1), [Code.Unauthenticated]);
    assert.deepEqual((await auditedPeers(seen + 1)).slice(seen), ["127.0.0.6"]);
    assert.equal(await loggedPeer("127.0.0.6-grpc-0"), "127.0.0.6");
  });

  it("gives a client that reaches the instance directly its own address, whatever it forges", async () => {
    const forged = { "x-forwarded-for": "127.0.0.9" };
    const seen = (await auditedPeers(0)).length;
    assert.deepEqual(await guess(direct, "127.0.0.7", "grpc", forged, 1), [Code.Unauthenticated]);
    assert.deepEqual(await guess(direct, "127.0.0.8", "rest", forged, 1), [401]);
    assert.deepEqual((await auditedPeers(seen + 2)).slice(seen), ["127.0.0.7", "127.0.0.8"]);
    assert.equal(await loggedPeer("127.0.0.7-grpc-0"), "127.0.0.7");
    assert.equal(await loggedPeer("127.0.0.8-rest-0"), "127.0.0.8");
  });
});
