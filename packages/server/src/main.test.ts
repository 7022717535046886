import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createUserClient } from "@keel/clients";

const main = fileURLToPath(new URL("./main.ts", import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), "keel-main-"));
const children = new Set<ChildProcess>();
after(() => {
  for (const child of children) if (child.pid) process.kill(-child.pid, "SIGKILL");
  rmSync(dataDir, { recursive: true, force: true });
});

/** Runs the server process as `node src/main.ts` (the real Node binary, its own process group). */
function run(env: Record<string, string>) {
  const child = spawn(process.execPath, ["--conditions=source", main], {
    env: { PATH: process.env.PATH ?? "", KEEL_PORT: "0", KEEL_HOST: "127.0.0.1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  children.add(child);
  child.once("exit", () => children.delete(child));
  let stderr = "";
  child.stderr?.on("data", (chunk) => (stderr += chunk));
  const exited = once(child, "exit").then(([code]) => ({ code: code as number | null, stderr }));
  return { child, exited };
}

/** Waits for the server's "serving" log line and returns its port. */
async function servingPort(child: ChildProcess): Promise<number> {
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  for await (const line of lines) {
    const entry = JSON.parse(line) as { msg?: string; port?: number };
    if (entry.msg === "serving gRPC, gRPC-Web and Connect" && entry.port) return entry.port;
  }
  throw new Error("the server exited before serving");
}

describe("the server process", () => {
  it("serves, stops cleanly on SIGTERM and keeps its data across a restart", async () => {
    const env = { KEEL_DATA_DIR: dataDir, KEEL_PASSWORD_COST: "10" };
    const first = run(env);
    const port = await servingPort(first.child);
    const client = createUserClient({ baseUrl: `http://127.0.0.1:${port}` });
    const { user } = await client.createUser({
      username: "persistent",
      email: "persistent@example.com",
      password: "long enough password",
    });
    assert.ok(user);
    process.kill(first.child.pid as number, "SIGTERM");
    assert.equal((await first.exited).code, 0);

    const second = run(env);
    const port2 = await servingPort(second.child);
    const again = createUserClient({ baseUrl: `http://127.0.0.1:${port2}` });
    const { user: found } = await again.getUser({ userId: user.userId });
    assert.deepEqual(found, user);
    // Tokens signed before the restart still verify: the development secret was kept.
    const login = await again.login({ username: "persistent", password: "long enough password" });
    assert.ok(login.accessToken);
    process.kill(second.child.pid as number, "SIGINT");
    assert.equal((await second.exited).code, 0);
  });

  it("exits with code 2 and names the setting when the configuration is bad", async () => {
    const badPort = await run({ KEEL_DATA_DIR: dataDir, KEEL_PORT: "ninety" }).exited;
    assert.equal(badPort.code, 2);
    assert.match(badPort.stderr, /KEEL_PORT/);
    const unknown = await run({ KEEL_DATA_DIR: dataDir, KEEL_PROT: "9090" }).exited;
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown setting KEEL_PROT/);
    const production = await run({ KEEL_DATA_DIR: dataDir, NODE_ENV: "production" }).exited;
    assert.equal(production.code, 2);
    assert.match(production.stderr, /KEEL_JWT_SECRET: required/);
  });
});
