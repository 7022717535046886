import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { auditLines } from "./testing/audit-lines.ts";
import { restFrom, userClientFrom } from "./testing/from-address.ts";
import { eventually } from "./testing/nginx.ts";
import { followLogs, runServer, servingUrl } from "./testing/process.ts";

// A server process with IP lists in its configuration file; clients connect from different
// loopback addresses (any of 127.0.0.0/8 reaches the server on Linux).

const password = "correct horse battery";

/** "ok" or the code name of a Login from `address` (a wrong password is still "ok" here). */
async function loginFrom(url: string, address: string): Promise<string> {
  try {
    await userClientFrom(url, address).login({ username: "nobody", password });
    return "ok";
  } catch (err) {
    const code = ConnectError.from(err).code;
    return code === Code.Unauthenticated ? "ok" : Code[code];
  }
}

/** "ok" or the code name of a ListUsers from `address` (no token: unauthenticated is "ok" here). */
async function listFrom(url: string, address: string): Promise<string> {
  try {
    await userClientFrom(url, address).listUsers({});
    return "ok";
  } catch (err) {
    const code = ConnectError.from(err).code;
    return code === Code.Unauthenticated ? "ok" : Code[code];
  }
}

describe("IP allow and deny lists of a server process", () => {
  const dir = mkdtempSync(join(tmpdir(), "keel-ip-access-"));
  const file = join(dir, "keel.yaml");
  const auditPath = join(dir, "audit.log");
  let url = "";
  let logs: Record<string, unknown>[] = [];

  before(async () => {
    writeFileSync(
      file,
      [
        "ipAccess:",
        "  deny: [127.0.0.2]",
        "  methods:",
        '    "user.v1.UserService/ListUsers": { allow: [127.0.0.4/32, "::1"] }',
        "",
      ].join("\n"),
    );
    const server = runServer({
      KEEL_CONFIG: file,
      KEEL_DATA_DIR: join(dir, "data"),
      KEEL_AUDIT_LOG: auditPath,
      KEEL_AUDIT_LOG_SUMMARY_INTERVAL_MS: "0",
      KEEL_JWT_SECRET: "a secret for the IP access test, 32+ characters",
    });
    url = await servingUrl(server);
    logs = followLogs(server);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("refuses a denied address with PERMISSION_DENIED on every protocol, and audits it", async () => {
    const err = await userClientFrom(url, "127.0.0.2", "connect")
      .login({ username: "nobody", password })
      .catch((e: unknown) => ConnectError.from(e));
    assert.ok(err instanceof ConnectError);
    assert.equal(err.code, Code.PermissionDenied);
    assert.equal(
      err.rawMessage,
      "calls to user.v1.UserService/Login are not accepted from this address (127.0.0.2)",
    );
    assert.equal(await loginFrom(url, "127.0.0.2"), "PermissionDenied");
    assert.equal(await loginFrom(url, "127.0.0.3"), "ok");
    const rest = await restFrom(url, {
      method: "POST",
      path: "/api/v1/auth/login",
      body: { username: "nobody", password },
      localAddress: "127.0.0.2",
      httpVersion: "1.1",
    });
    assert.equal(rest.status, 403);
    const refusals = await eventually("three audited refusals", () => {
      const entries = auditLines(auditPath).filter((e) => e.peer === "127.0.0.2");
      return entries.length === 3 ? entries : undefined;
    });
    for (const entry of refusals) {
      assert.equal(entry.method, "user.v1.UserService/Login");
      assert.equal(entry.outcome, "PermissionDenied");
      assert.equal(entry.principal, null);
    }
  });

  it("narrows a method to its own allow list, the global deny list still holding", async () => {
    assert.equal(await listFrom(url, "127.0.0.4"), "ok");
    assert.equal(await listFrom(url, "127.0.0.3"), "PermissionDenied");
    assert.equal(await loginFrom(url, "127.0.0.3"), "ok");
  });

  it("applies edited lists live, without a restart", async () => {
    writeFileSync(file, "ipAccess:\n  allow: [127.0.0.2/32]\n");
    await eventually("the reload", () =>
      logs.find((entry) => entry.msg === "configuration reloaded"),
    );
    const reloaded = logs.find((entry) => entry.msg === "configuration reloaded");
    assert.deepEqual(reloaded?.settings, ["ipAccess"]);
    assert.equal(await loginFrom(url, "127.0.0.2"), "ok");
    assert.equal(await loginFrom(url, "127.0.0.3"), "PermissionDenied");
    assert.equal(await listFrom(url, "127.0.0.4"), "PermissionDenied");
    assert.deepEqual(
      logs.filter((e) => /restart/.test(String(e.msg))),
      [],
      "IP lists need no restart",
    );
  });
});
