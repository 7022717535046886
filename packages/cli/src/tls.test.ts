import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { serverOutput } from "./server-bin.ts";
import { runCli } from "./testing/run-cli.ts";
import { type ServerProcess, startServerProcess } from "./testing/server-process.ts";

const certs = mkdtempSync(join(tmpdir(), "keel-cli-tls-"));
after(() => rmSync(certs, { recursive: true, force: true }));
const file = (name: string) => join(certs, name);

describe("keel against a mutual-TLS server", () => {
  let server: ServerProcess;
  let tlsFlags: string[];
  before(async () => {
    await serverOutput(["certs", "--out", certs]);
    server = await startServerProcess({
      KEEL_TLS_CERT: file("server.pem"),
      KEEL_TLS_KEY: file("server-key.pem"),
      KEEL_TLS_CLIENT_CA: file("ca.pem"),
    });
    tlsFlags = [
      "--ca",
      file("ca.pem"),
      "--cert",
      file("client.pem"),
      "--key",
      file("client-key.pem"),
    ];
  });

  it("health, client, stream and perf call it with --ca, --cert and --key", async () => {
    const url = ["--url", server.url];
    const [health, client, stream, perf] = await Promise.all([
      runCli(["health", ...url, ...tlsFlags], server.env),
      runCli(["client", ...url, ...tlsFlags], server.env),
      runCli(["stream", ...url, ...tlsFlags, "--interval", "10ms"], server.env),
      runCli(["perf", ...url, ...tlsFlags, "--requests", "20", "--json"], server.env),
    ]);
    assert.equal(health.stdout, "SERVING\n", health.stderr);
    for (const result of [client, stream, perf]) assert.equal(result.code, 0, result.stderr);
    assert.match(client.stdout, /DELIVERED/);
    assert.deepEqual(JSON.parse(perf.stdout).statusCodes, { OK: 20 });
  });

  it("takes them from KEEL_TLS_CA, KEEL_TLS_CLIENT_CERT and KEEL_TLS_CLIENT_KEY, and the URL from the server's settings", async () => {
    const result = await runCli(["stream", "--interval", "10ms"], {
      ...server.env,
      KEEL_PORT: String(server.port),
      KEEL_TLS_CERT: file("server.pem"),
      KEEL_TLS_KEY: file("server-key.pem"),
      KEEL_TLS_CLIENT_CA: file("ca.pem"),
      KEEL_TLS_CA: file("ca.pem"),
      KEEL_TLS_CLIENT_CERT: file("client.pem"),
      KEEL_TLS_CLIENT_KEY: file("client-key.pem"),
    });
    assert.equal(result.code, 0, result.stderr);
  });

  it("says which flag is missing when the server is not trusted, or wants a certificate", async () => {
    const [untrusted, anonymous, halfPair] = await Promise.all([
      runCli(["health", "--url", server.url]),
      runCli(["health", "--url", server.url, "--ca", file("ca.pem")]),
      runCli(["health", "--url", server.url, "--cert", file("client.pem")]),
    ]);
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /--ca or KEEL_TLS_CA/);
    assert.equal(anonymous.code, 1);
    assert.match(anonymous.stderr, /wants a client certificate: --cert and --key/);
    assert.equal(halfPair.code, 2);
    assert.match(halfPair.stderr, /--cert and --key/);
  });
});
