import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { writeDevCerts } from "./dev-certs.ts";
import { followLogs, runServer, servingUrl } from "./testing/process.ts";

// A server process serving mutual TLS from files in `live`; renewals are written there from
// other directories, file by file, as a certificate tool does.
const root = mkdtempSync(join(tmpdir(), "keel-tls-reload-"));
const live = join(root, "live");
const first = join(root, "first");
const second = join(root, "second");
const third = join(root, "third");
const pem = (dir: string, name: string) => readFileSync(join(dir, name));
const serialOf = (dir: string) => new X509Certificate(pem(dir, "server.pem")).serialNumber;
let url: string;
let logs: Record<string, unknown>[];

before(async () => {
  await writeDevCerts({ dir: first });
  await writeDevCerts({ dir: second });
  await writeDevCerts({ dir: third });
  await writeDevCerts({ dir: live });
  for (const name of ["server.pem", "server-key.pem", "ca.pem"]) {
    copyFileSync(join(first, name), join(live, name));
  }
  const server = runServer({
    KEEL_DATA_DIR: join(root, "data"),
    KEEL_JWT_SECRET: "tls-reload-test-secret-tls-reload-test",
    KEEL_TLS_CERT: join(live, "server.pem"),
    KEEL_TLS_KEY: join(live, "server-key.pem"),
    KEEL_TLS_CLIENT_CA: join(live, "ca.pem"),
    KEEL_TLS_RELOAD_DELAY_MS: "200",
  });
  url = (await servingUrl(server)).replace("http:", "https:");
  logs = followLogs(server);
});
after(() => rmSync(root, { recursive: true, force: true }));

/** A connection trusting both CAs, with the client certificate `dir`'s CA signed. */
async function connect(dir: string): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(url, {
    ca: [pem(first, "ca.pem"), pem(second, "ca.pem")],
    cert: pem(dir, "client.pem"),
    key: pem(dir, "client-key.pem"),
  });
  await Promise.race([
    once(session, "connect"),
    once(session, "error").then(([err]) => Promise.reject(err)),
  ]);
  return session;
}

/** The serial number of the certificate the server showed this connection. */
function serialSeenBy(session: http2.ClientHttp2Session): string {
  const socket = session.socket as unknown as { getPeerCertificate(): { serialNumber: string } };
  return socket.getPeerCertificate().serialNumber;
}

/**
 * A health check over the connection: its HTTP status; rejects when the stream ends without a
 * response (as it does when the server refuses the client's certificate after the handshake).
 */
function healthStatus(session: http2.ClientHttp2Session): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ":method": "POST",
      ":path": "/grpc.health.v1.Health/Check",
      "content-type": "application/json",
    });
    let status: number | undefined;
    stream.once("response", (headers) => {
      status = headers[":status"];
    });
    stream.once("error", reject);
    stream.once("close", () =>
      status === undefined ? reject(new Error("no response")) : resolve(status),
    );
    stream.resume();
    stream.end("{}");
  });
}

/** Waits for the server's next log line with this message, after `from` lines. */
async function logLine(message: string, from: number): Promise<Record<string, unknown>> {
  for (;;) {
    const line = logs.slice(from).find((l) => l.msg === message);
    if (line !== undefined) return line;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("TLS files at start", () => {
  it("refuses to start with a key that is not the certificate's, naming both files", async () => {
    const { code, stderr } = await runServer(
      {
        KEEL_DATA_DIR: join(root, "data-bad"),
        KEEL_JWT_SECRET: "tls-reload-test-secret-tls-reload-test",
        KEEL_TLS_CERT: join(first, "server.pem"),
        KEEL_TLS_KEY: join(second, "server-key.pem"),
      },
      ["serve"],
    ).exited;
    assert.equal(code, 1);
    assert.match(
      stderr,
      /the key in .*second\/server-key\.pem is not the key of the certificate in .*first\/server\.pem/,
    );
  });
});

describe("TLS certificate rotation without a restart", () => {
  it("serves a renewed certificate to new connections while an open one keeps working", async () => {
    const old = await connect(first);
    assert.equal(serialSeenBy(old), serialOf(first));
    assert.equal(await healthStatus(old), 200);

    const seen = logs.length;
    for (const name of ["server.pem", "server-key.pem", "ca.pem"]) {
      copyFileSync(join(second, name), join(live, name));
    }
    const reloaded = await logLine(
      "TLS certificate reloaded: new connections get the new one",
      seen,
    );
    assert.equal((reloaded.certificate as { serialNumber: string }).serialNumber, serialOf(second));

    const renewed = await connect(second);
    assert.equal(serialSeenBy(renewed), serialOf(second));
    assert.equal(await healthStatus(renewed), 200);
    // The client CA was renewed with the rest: a certificate of the old one is refused now.
    await assert.rejects(connect(first).then(healthStatus));
    // The connection opened before the renewal still answers.
    assert.equal(await healthStatus(old), 200);
    old.close();
    renewed.close();
  });

  it("refuses a key that is not the certificate's, logs why, and keeps serving the last good pair", async () => {
    const seen = logs.length;
    copyFileSync(join(third, "server-key.pem"), join(live, "server-key.pem"));
    const rejected = await logLine("TLS reload rejected; the running certificate stays", seen);
    assert.match(String(rejected.problem), /is not the key of the certificate/);
    assert.equal(rejected.level, 50);

    const session = await connect(second);
    assert.equal(serialSeenBy(session), serialOf(second));
    assert.equal(await healthStatus(session), 200);
    session.close();
  });
});
