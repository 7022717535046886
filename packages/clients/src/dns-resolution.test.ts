import assert from "node:assert/strict";
import { promises as dns } from "node:dns";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { Health } from "@keel/gen/health/v1/health_pb";
import { type ClientTransport, createClientTransport } from "./client-transport.ts";
import { createDnsResolver } from "./dns-resolver.ts";
import { type DnsServer, startDnsServer } from "./testing/dns-server.ts";
import { type ServerProcess, startServerProcess } from "./testing/server-process.ts";

// Three keel server processes on one port of three loopback addresses, named by a DNS server of
// the test's whose records change while the client runs: what scaling a headless Kubernetes
// service looks like to a client.
const name = "users.keel.test";

/** Waits until `done` holds, trying every 20 ms; fails after `ms` with `what`. */
async function until(done: () => boolean, what: string, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !done(); await sleep(20)) {
    if (Date.now() > end) assert.fail(`timed out waiting until ${what}`);
  }
}

/** Calls per endpoint URL so far. */
function callsByUrl(transport: ClientTransport): Map<string, number> {
  return new Map(transport.endpoints().map((e) => [e.url, e.calls]));
}

describe("dns:/// endpoints", () => {
  let dnsServer: DnsServer;
  let servers: ServerProcess[] = [];
  let port = 0;
  const resolver = new dns.Resolver({ timeout: 2000, tries: 2 });
  const transports: ClientTransport[] = [];
  const urlOf = (host: string) => `http://${host}:${port}`;
  const transport = (nameResolution: { refreshIntervalMs: number; minIntervalMs: number }) => {
    const t = createClientTransport({
      endpoints: [`dns:///${name}:${port}`],
      nameResolution: { ...nameResolution, resolver },
    });
    transports.push(t);
    return t;
  };
  const check = (t: ClientTransport, n: number) =>
    Promise.all(Array.from({ length: n }, () => createClient(Health, t).check({ service: "" })));

  before(async () => {
    dnsServer = await startDnsServer();
    resolver.setServers([`127.0.0.1:${dnsServer.port}`]);
    const first = await startServerProcess();
    port = Number(new URL(first.url).port);
    const rest = await Promise.all(
      ["127.0.0.2", "127.0.0.3"].map((host) =>
        startServerProcess({ KEEL_HOST: host, KEEL_PORT: String(port) }),
      ),
    );
    servers = [first, ...rest];
  });

  after(async () => {
    for (const t of transports) t.close();
    await Promise.all(servers.map((s) => s.kill()));
    await dnsServer.close();
  });

  it("calls every address of the name, adds new ones at the refresh and drops removed ones", async () => {
    dnsServer.set(name, ["127.0.0.1", "127.0.0.2"]);
    const t = transport({ refreshIntervalMs: 100, minIntervalMs: 100 });
    // The first calls wait for the first resolution.
    await check(t, 20);
    assert.deepEqual(
      t.endpoints().map((e) => [e.url, e.calls]),
      [
        [urlOf("127.0.0.1"), 10],
        [urlOf("127.0.0.2"), 10],
      ],
    );

    dnsServer.set(name, ["127.0.0.1", "127.0.0.2", "127.0.0.3"]);
    await until(() => t.endpoints().length === 3, "the third address is resolved");
    await check(t, 30);
    assert.deepEqual(
      t.endpoints().map((e) => [e.url, e.calls]),
      [
        [urlOf("127.0.0.1"), 20],
        [urlOf("127.0.0.2"), 20],
        [urlOf("127.0.0.3"), 10],
      ],
    );

    dnsServer.set(name, ["127.0.0.3", "127.0.0.1"]);
    await until(() => t.endpoints().length === 2, "the second address is gone");
    const before = callsByUrl(t);
    await check(t, 20);
    const after = callsByUrl(t);
    assert.deepEqual([...after.keys()], [urlOf("127.0.0.3"), urlOf("127.0.0.1")]);
    assert.equal((after.get(urlOf("127.0.0.3")) ?? 0) - (before.get(urlOf("127.0.0.3")) ?? 0), 10);
    assert.equal((after.get(urlOf("127.0.0.1")) ?? 0) - (before.get(urlOf("127.0.0.1")) ?? 0), 10);
  });

  it("fails calls with UNAVAILABLE naming the name when it has no address", async () => {
    const t = createClientTransport({
      endpoints: [`dns:///nowhere.keel.test:${port}`],
      nameResolution: { resolver },
      retry: false,
    });
    transports.push(t);
    await assert.rejects(createClient(Health, t).check({ service: "" }), (err: unknown) => {
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code, Code.Unavailable);
      assert.match(err.message, /dns:\/\/\/nowhere\.keel\.test:\d+: resolving nowhere\.keel\.test/);
      return true;
    });
  });

  // Last: it stops a server.
  it("resolves the name again when a connection fails, long before the refresh", async () => {
    dnsServer.set(name, ["127.0.0.1", "127.0.0.3"]);
    const t = transport({ refreshIntervalMs: 3_600_000, minIntervalMs: 50 });
    await check(t, 4);
    assert.deepEqual(
      t.endpoints().map((e) => e.url),
      [urlOf("127.0.0.1"), urlOf("127.0.0.3")],
    );
    const queries = dnsServer.queries(name);
    dnsServer.set(name, ["127.0.0.1"]);
    await servers[2]?.kill();
    // The broken connection (the health Watch's, or a call's) asks for a new resolution, which
    // drops the stopped server's address.
    await until(() => t.endpoints().length === 1, "the stopped server's address is dropped");
    assert.ok(dnsServer.queries(name) > queries, "the name was resolved again");
    assert.deepEqual(
      t.endpoints().map((e) => e.url),
      [urlOf("127.0.0.1")],
    );
    const results = await check(t, 10);
    assert.equal(results.length, 10);
  });
});

describe("createDnsResolver", () => {
  it("resolves again on request no more often than minIntervalMs", async () => {
    const server = await startDnsServer();
    const resolver = new dns.Resolver({ timeout: 2000, tries: 2 });
    resolver.setServers([`127.0.0.1:${server.port}`]);
    server.set("a.keel.test", ["127.0.0.1", "::1"]);
    const seen: string[][] = [];
    const options = { host: "a.keel.test", resolver, refreshIntervalMs: 3_600_000 };
    const limited = createDnsResolver({
      ...options,
      minIntervalMs: 3_600_000,
      onAddresses: (a) => seen.push(a),
      onError: assert.fail,
    });
    try {
      await until(() => seen.length === 1, "the first answer");
      assert.deepEqual(seen, [["127.0.0.1", "::1"]]);
      const queries = server.queries("a.keel.test"); // A and AAAA
      for (let i = 0; i < 5; i++) limited.resolveNow();
      await sleep(200);
      assert.equal(server.queries("a.keel.test"), queries, "no new query within the interval");
    } finally {
      limited.close();
    }
    const eager = createDnsResolver({
      ...options,
      minIntervalMs: 0,
      onAddresses: (a) => seen.push(a),
      onError: assert.fail,
    });
    try {
      await until(() => seen.length === 2, "the first answer");
      server.set("a.keel.test", ["127.0.0.2"]);
      eager.resolveNow();
      await until(() => seen.length === 3, "the new answer");
      assert.deepEqual(seen[2], ["127.0.0.2"]);
    } finally {
      eager.close();
      await server.close();
    }
  });

  it("finds names of the hosts file with the default resolver", async () => {
    const found = await new Promise<string[]>((resolve, reject) => {
      const r = createDnsResolver({
        host: "localhost",
        onAddresses: (a) => {
          r.close();
          resolve(a);
        },
        onError: reject,
      });
    });
    assert.ok(found.includes("127.0.0.1"), `localhost is ${found.join(", ")}`);
  });
});
