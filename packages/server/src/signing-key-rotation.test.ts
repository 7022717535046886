import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { createUserClient } from "@keel/clients";
import { hs256KeyId } from "@keel/interceptors";
import { followLogs, runServer, servingUrl } from "./testing/process.ts";
import { rejectsWith } from "./testing/rpc.ts";

// A server process whose configuration file rotates its JWT signing key while it runs, as the
// procedure in docs/security.md does: the new key signs, the old one is accepted until it is removed.
const dir = mkdtempSync(join(tmpdir(), "keel-key-rotation-"));
const file = join(dir, "keel.yaml");
const oldKey = "the old signing key, at least 32 characters long";
const newKey = "the new signing key, at least 32 characters long";
const kidOf = (key: string) => hs256KeyId(new TextEncoder().encode(key));
const env = {
  KEEL_CONFIG: file,
  KEEL_DATA_DIR: join(dir, "data"),
  KEEL_PASSWORD_COST: "10",
};
let url: string;
let logs: Record<string, unknown>[];

before(async () => {
  writeFileSync(file, `auth: { jwtSecret: "${oldKey}" }\n`);
  const server = runServer(env);
  url = await servingUrl(server);
  logs = followLogs(server);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The `kid` header of a JWT. */
function kidOfToken(token: string): unknown {
  const header = token.split(".")[0] ?? "";
  return (JSON.parse(Buffer.from(header, "base64url").toString()) as { kid?: unknown }).kid;
}

/** Writes the configuration file, and waits until the server has reloaded it. */
async function reconfigure(yaml: string): Promise<void> {
  const seen = logs.length;
  writeFileSync(file, yaml);
  for (;;) {
    const line = logs.slice(seen).find((l) => l.msg === "configuration reloaded");
    if (line !== undefined) {
      assert.ok((line.settings as string[]).includes("auth.acceptedJwtSecrets"));
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** An access token from `keel-server token`, with the configuration in the file now. */
async function cliToken(): Promise<string> {
  const { code, stdout, stderr } = await runServer(env, [
    "token",
    "--user-id",
    "1",
    "--roles",
    "admin",
  ]).exited;
  assert.equal(code, 0, stderr);
  return stdout.trim();
}

describe("rotating the JWT signing key while running", () => {
  it("accepts tokens of the old key until it is removed, and signs new ones with the new key", async () => {
    const users = createUserClient({ baseUrl: url });
    const { user } = await users.createUser({
      username: "rotor",
      email: "rotor@example.com",
      password: "correct horse battery",
    });
    const userId = user?.userId ?? 0n;
    const before = await users.login({ username: "rotor", password: "correct horse battery" });
    assert.equal(kidOfToken(before.accessToken), kidOf(oldKey));
    assert.equal(kidOfToken(before.refreshToken), kidOf(oldKey));
    const oldAdmin = await cliToken();
    assert.equal(kidOfToken(oldAdmin), kidOf(oldKey));
    const getUser = (token: string) =>
      createUserClient({ baseUrl: url, token }).getUser({ userId });
    assert.equal((await getUser(before.accessToken)).user?.username, "rotor");

    // Step 2 of the procedure: the new key signs, the old one is still accepted.
    await reconfigure(`auth: { jwtSecret: "${newKey}", acceptedJwtSecrets: ["${oldKey}"] }\n`);
    assert.equal((await getUser(before.accessToken)).user?.username, "rotor");
    assert.equal((await getUser(oldAdmin)).user?.username, "rotor");
    const refreshed = await users.refreshToken({ refreshToken: before.refreshToken });
    assert.equal(kidOfToken(refreshed.accessToken), kidOf(newKey));
    assert.equal(kidOfToken(refreshed.refreshToken), kidOf(newKey));
    assert.equal((await getUser(refreshed.accessToken)).user?.username, "rotor");
    const newAdmin = await cliToken();
    assert.equal(kidOfToken(newAdmin), kidOf(newKey));
    assert.equal((await getUser(newAdmin)).user?.username, "rotor");

    // Step 3: the old key is removed; its tokens are refused, even those verified before.
    await reconfigure(`auth: { jwtSecret: "${newKey}" }\n`);
    await rejectsWith(getUser(before.accessToken), Code.Unauthenticated);
    await rejectsWith(getUser(oldAdmin), Code.Unauthenticated);
    assert.equal((await getUser(refreshed.accessToken)).user?.username, "rotor");
    assert.equal((await getUser(newAdmin)).user?.username, "rotor");
    const again = await users.refreshToken({ refreshToken: refreshed.refreshToken });
    assert.equal(kidOfToken(again.accessToken), kidOf(newKey));
  });
});
