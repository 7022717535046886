import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { createClientCredentialsProvider, createUserClient } from "@keel/clients";
import { startTestIssuer, type TestIssuer } from "@keel/interceptors/testing/oidc-issuer";
import { followLogs, runServer, servingUrl } from "./testing/process.ts";
import { rejectsWith } from "./testing/rpc.ts";

// A server process configured (YAML) with a local OpenID Connect issuer on port 0, and a
// service calling it with client credentials tokens from that issuer.
const dir = mkdtempSync(join(tmpdir(), "keel-oidc-"));
const cooldownMs = 300;
let idp: TestIssuer;
let url: string;
let logs: Record<string, unknown>[];

before(async () => {
  idp = await startTestIssuer({
    audience: "keel-api",
    clients: {
      "order-sync": { secret: "order-sync-secret", roles: ["keel-admin"] },
      reporting: { secret: "reporting-secret", roles: ["viewer"] },
    },
  });
  const file = join(dir, "keel.yaml");
  writeFileSync(
    file,
    [
      "auth:",
      "  oidc:",
      `    issuer: "${idp.url}"`,
      "    audience: [keel-api]",
      '    roleMapping: { "keel-admin": admin }',
      `    jwksCooldownMs: ${cooldownMs}`,
      "",
    ].join("\n"),
  );
  const server = runServer({
    KEEL_CONFIG: file,
    KEEL_DATA_DIR: join(dir, "data"),
    KEEL_JWT_SECRET: "oidc-test-secret-oidc-test-secret-oidc",
  });
  url = await servingUrl(server);
  logs = followLogs(server);
  while (!logs.some((l) => l.msg === "OpenID Connect issuer ready: its keys are loaded")) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
});
after(async () => {
  await idp.close();
  rmSync(dir, { recursive: true, force: true });
});

const usersWith = (token: string) => createUserClient({ baseUrl: url, token });

describe("OpenID Connect access tokens on a server process", () => {
  it("serves a service calling with client credentials tokens, its role mapped to admin", async () => {
    const token = createClientCredentialsProvider({
      issuer: idp.url,
      clientId: "order-sync",
      clientSecret: "order-sync-secret",
    });
    const users = createUserClient({ baseUrl: url, interceptors: [token.interceptor] });
    const before = idp.requests.token;
    for (let i = 0; i < 3; i++) await users.listUsers({});
    assert.equal(idp.requests.token, before + 1);
  });

  it("grants nothing for an unmapped role, never makes the issuer's subject a keel user, and refuses another audience", async () => {
    const reporting = createClientCredentialsProvider({
      issuer: idp.url,
      clientId: "reporting",
      clientSecret: "reporting-secret",
    });
    await rejectsWith(usersWith(await reporting()).listUsers({}), Code.PermissionDenied);
    // Subject "1" at the issuer is not keel's user 1: not the owner of that user.
    const one = await idp.sign({ sub: "1", aud: "keel-api", roles: [] });
    await rejectsWith(usersWith(one).getUser({ userId: 1n }), Code.PermissionDenied);
    const elsewhere = await idp.sign({ sub: "x", aud: "other-api", roles: ["keel-admin"] });
    await rejectsWith(
      usersWith(elsewhere).listUsers({}),
      Code.Unauthenticated,
      /not accepted here \(aud claim\)/,
    );
  });

  it("accepts tokens signed with the issuer's new key after it rotates", async () => {
    const fetched = idp.requests.jwks;
    await idp.rotate();
    // The server fetches the key set again for the new kid once the cooldown has passed.
    await new Promise((resolve) => setTimeout(resolve, cooldownMs + 50));
    const token = await idp.sign({ sub: "ops", aud: "keel-api", roles: ["keel-admin"] });
    await usersWith(token).listUsers({});
    assert.equal(idp.requests.jwks, fetched + 1);
  });
});
