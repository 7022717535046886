import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { compileCache, runCli } from "./testing/run-cli.ts";

describe("keel server", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "keel-cli-server-"));
  after(() => rmSync(dataDir, { recursive: true, force: true }));
  const env = {
    PATH: process.env.PATH ?? "",
    NODE_COMPILE_CACHE: compileCache,
    KEEL_HOST: "127.0.0.1",
    KEEL_PORT: "0",
    KEEL_ADMIN_PORT: "0",
    KEEL_DATA_DIR: dataDir,
  };

  it("serves like the server's own entry point, and stops cleanly on SIGTERM", async () => {
    const main = fileURLToPath(new URL("./main.ts", import.meta.url));
    const child = spawn(process.execPath, ["--conditions=source", main, "server"], {
      env,
      stdio: ["ignore", "pipe", "inherit"],
    });
    after(() => child.kill("SIGKILL"));
    const exited = once(child, "exit");
    let port = 0;
    for await (const line of createInterface({ input: child.stdout })) {
      const entry = JSON.parse(line) as { msg?: string; port?: number };
      if (entry.msg === "serving gRPC, gRPC-Web and Connect" && entry.port) {
        port = entry.port;
        break;
      }
    }
    child.stdout.resume();
    const health = await runCli(["health", "--url", `http://127.0.0.1:${port}`]);
    assert.equal(health.stdout, "SERVING\n");
    child.kill("SIGTERM");
    assert.deepEqual(await exited, [0, null]);
  });

  it("exits 2 naming a bad setting", async () => {
    const result = await runCli(["server"], { ...env, KEEL_PORT: "ninety" });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /invalid configuration: KEEL_PORT: /);
  });
});
