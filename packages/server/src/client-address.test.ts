import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import type { AuditEntry } from "@keel/interceptors";
import { pino } from "pino";
import { restFrom, userClientFrom } from "./testing/from-address.ts";
import { eventually } from "./testing/nginx.ts";
import { iterate, pushable, take } from "./testing/rpc.ts";
import { startTestServer, type TestServer } from "./testing/test-server.ts";

// The server behind a proxy at 127.0.0.1 (this test process, sending x-forwarded-for as a proxy
// would): every protocol and call kind sees the forwarded client, in logs, audit and rate limits.
// Clients connecting from elsewhere on loopback (127.0.0.2) are not proxies.

let server: TestServer;
const logs: Record<string, unknown>[] = [];
const audit: AuditEntry[] = [];
const proxy = "127.0.0.1";
const password = "correct horse battery";

before(async () => {
  server = await startTestServer({
    clientAddress: { trustedProxies: ["127.0.0.1/32"] },
    auditLog: { write: (entry) => audit.push(entry) },
    logger: pino({ level: "debug" }, { write: (line: string) => logs.push(JSON.parse(line)) }),
    rateLimits: {
      default: { ratePerSecond: 100_000, burst: 100_000 },
      methods: { "user.v1.UserService/Login": { ratePerSecond: 1 / 60, burst: 2 } },
    },
  });
  const admin = userClientFrom(server.url, proxy);
  await admin.createUser(
    { username: "ada", email: "ada@example.com", password },
    { headers: { authorization: `Bearer ${server.adminToken}` } },
  );
});
after(() => server.stop());

/** The peer the access log line of the call with this request id names, once it is written. */
async function loggedPeer(requestId: string): Promise<unknown> {
  const line = await eventually(`the log line of ${requestId}`, () =>
    logs.find((l) => l.request_id === requestId),
  );
  return line.peer;
}

/** Login attempts with a wrong password until refused: the codes. */
async function guesses(login: () => Promise<unknown>, count: number): Promise<Code[]> {
  const codes: Code[] = [];
  for (let n = 0; n < count; n++) {
    codes.push(
      await login().then(
        () => Code.Unknown,
        (err: unknown) => ConnectError.from(err).code,
      ),
    );
  }
  return codes;
}

describe("the client's address behind a trusted proxy", () => {
  it("is the forwarded one in the access log, for every protocol and call kind", async () => {
    const token = { authorization: `Bearer ${server.adminToken}` };
    const headers = (n: number) => ({
      ...token,
      "x-request-id": `call-${n}`,
      "x-forwarded-for": `203.0.113.66, 198.51.100.${n}`,
    });
    const grpc = userClientFrom(server.url, proxy);
    // gRPC calls are the engine's; the other protocols take connect's adapter.
    await grpc.getUser({ userId: 1n }, { headers: headers(1) });
    const abort = new AbortController();
    const stream = grpc
      .streamUserActivities({ userId: 1n }, { headers: headers(2), signal: abort.signal })
      [Symbol.asyncIterator]();
    await take(stream, 1);
    abort.abort();
    await stream.next().catch(() => undefined);
    await grpc.batchUpdateUsers(iterate([{ userId: 1n, user: { tags: ["x"] } }]), {
      headers: headers(3),
    });
    const out = pushable<{ userId: bigint }>();
    const sync = grpc.syncUserStatus(out, { headers: headers(4) })[Symbol.asyncIterator]();
    out.push({ userId: 1n });
    await take(sync, 1);
    out.end();
    await sync.next();
    await userClientFrom(server.url, proxy, "connect").getUser(
      { userId: 1n },
      { headers: headers(5) },
    );
    await userClientFrom(server.url, proxy, "grpc-web").getUser(
      { userId: 1n },
      { headers: headers(6) },
    );
    for (const [n, httpVersion] of [
      [7, "1.1"],
      [8, "2"],
    ] as const) {
      const rest = await restFrom(server.url, {
        method: "GET",
        path: "/api/v1/users/1",
        headers: headers(n),
        localAddress: proxy,
        httpVersion,
      });
      assert.equal(rest.status, 200, rest.body);
    }
    // Each line also names the call's protocol: REST's too, which no content type tells apart.
    const protocols = ["grpc", "grpc", "grpc", "grpc", "connect", "grpc-web", "rest", "rest"];
    for (let n = 1; n <= 8; n++) {
      assert.equal(await loggedPeer(`call-${n}`), `198.51.100.${n}`, `call ${n}`);
      const line = logs.find((l) => l.request_id === `call-${n}`);
      assert.equal(line?.protocol, protocols[n - 1], `call ${n}`);
    }
  });

  it("gives each forwarded client its own Login budget, and audits its address", async () => {
    const grpc = userClientFrom(server.url, proxy);
    const login = (client: string) => () =>
      grpc.login(
        { username: "ada", password: "wrong" },
        { headers: { "x-forwarded-for": client } },
      );
    assert.deepEqual(await guesses(login("198.51.100.20"), 3), [
      Code.Unauthenticated,
      Code.Unauthenticated,
      Code.ResourceExhausted,
    ]);
    // Another client behind the same proxy has a budget of its own; over REST too.
    assert.deepEqual(await guesses(login("198.51.100.21"), 1), [Code.Unauthenticated]);
    const rest = await restFrom(server.url, {
      method: "POST",
      path: "/api/v1/auth/login",
      body: { username: "ada", password: "wrong" },
      headers: { "x-forwarded-for": "198.51.100.22" },
      localAddress: proxy,
      httpVersion: "1.1",
    });
    assert.equal(rest.status, 401, rest.body);
    const peers = audit.filter((e) => e.method === "user.v1.UserService/Login").map((e) => e.peer);
    assert.deepEqual(peers, [
      "198.51.100.20",
      "198.51.100.20",
      "198.51.100.20",
      "198.51.100.21",
      "198.51.100.22",
    ]);
  });

  it("is the socket's address for a client that is no trusted proxy, whatever it sends", async () => {
    const direct = userClientFrom(server.url, "127.0.0.2");
    const forged = { "x-forwarded-for": "198.51.100.30", "x-request-id": "forged" };
    const before = audit.length;
    await direct.login({ username: "ada", password: "wrong" }, { headers: forged }).catch(() => {});
    const rest = await restFrom(server.url, {
      method: "GET",
      path: "/api/v1/users/1",
      headers: { ...forged, "x-request-id": "forged-rest" },
      localAddress: "127.0.0.2",
      httpVersion: "1.1",
    });
    assert.equal(rest.status, 401);
    assert.equal(await loggedPeer("forged"), "127.0.0.2");
    assert.equal(await loggedPeer("forged-rest"), "127.0.0.2");
    assert.deepEqual(
      audit.slice(before).map((e) => e.peer),
      ["127.0.0.2"],
    );
  });
});
