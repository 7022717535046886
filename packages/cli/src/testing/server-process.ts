import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after } from "node:test";
import { fileURLToPath } from "node:url";
import { compileCache } from "./run-cli.ts";

// The real server process, from the workspace's sources. KEEL_TEST_CLI_SERVER_MAIN names another
// entry point (another checkout's packages/server/src/main.ts) to test the CLI against.
const serverMain =
  process.env.KEEL_TEST_CLI_SERVER_MAIN ??
  fileURLToPath(new URL("../../../server/src/main.ts", import.meta.url));

// Everything started here is removed when the test file ends (a hook registered at load time:
// one registered inside a test's own hooks would run when that hook ends).
const cleanups: (() => void)[] = [];
after(() => {
  for (const cleanup of cleanups) cleanup();
});

export interface ServerProcess {
  /** The API's base URL, `http://127.0.0.1:<port>` (https with KEEL_TLS_CERT). */
  url: string;
  /** The API's port. */
  port: number;
  /**
   * The environment a CLI run on "the same machine" needs: the server's data directory and JWT
   * secret, so that the CLI mints tokens the server accepts.
   */
  env: Record<string, string>;
}

/**
 * Starts `node packages/server/src/main.ts` on free ports of 127.0.0.1, in a fresh data directory
 * and its own process group; both are removed when the test file ends. Rate limits are roomy:
 * tests make many quick calls as one caller.
 */
export async function startServerProcess(
  extraEnv: Record<string, string> = {},
): Promise<ServerProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), "keel-cli-"));
  const env = {
    KEEL_DATA_DIR: dataDir,
    KEEL_JWT_SECRET: "cli-test-secret-cli-test-secret-cli-test",
  };
  const child = spawn(process.execPath, ["--conditions=source", serverMain], {
    env: {
      PATH: process.env.PATH ?? "",
      NODE_COMPILE_CACHE: compileCache,
      ...env,
      KEEL_HOST: "127.0.0.1",
      KEEL_PORT: "0",
      KEEL_ADMIN_PORT: "0",
      KEEL_PASSWORD_COST: "10",
      KEEL_RATE_LIMIT_RPS: "100000",
      KEEL_RATE_LIMIT_BURST: "100000",
      KEEL_LOGIN_RATE_LIMIT_PER_MINUTE: "10000",
      KEEL_LOGIN_RATE_LIMIT_BURST: "1000",
      KEEL_CREATE_USER_RATE_LIMIT_PER_MINUTE: "10000",
      KEEL_CREATE_USER_RATE_LIMIT_BURST: "1000",
      KEEL_PASSWORD_HASH_PER_CLIENT: "64",
      KEEL_LOG_LEVEL: "info",
      ...extraEnv,
    },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  cleanups.push(() => {
    if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, "SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  // The log is read to its end (lines after the first are dropped) so the server never blocks.
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === "serving gRPC, gRPC-Web and Connect" && entry.port) resolve(entry.port);
      } catch {
        // Not a log line.
      }
    });
    child.once("exit", (code) => {
      reject(new Error(`the server exited (${code}) before serving: ${stderr}`));
    });
  });
  const scheme = extraEnv.KEEL_TLS_CERT === undefined ? "http" : "https";
  return { url: `${scheme}://127.0.0.1:${port}`, port, env };
}
