import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

// The server sits above the clients in the dependency graph, so tests run it as a process (its
// sources, as `node --conditions=source`) instead of importing it. KEEL_TEST_SERVER_MAIN runs
// another entry point instead, for example a built `dist/main.js`.
const main =
  process.env.KEEL_TEST_SERVER_MAIN ??
  fileURLToPath(new URL("../../../server/src/main.ts", import.meta.url));

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
after(() => {
  for (const child of children) if (child.pid) process.kill(-child.pid, "SIGKILL");
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A JWT secret every test server process shares, so one token works on all of them. */
export const testJwtSecret = "clients-test-secret-clients-test-secret";

/** A keel server process listening on a free port of 127.0.0.1 (or of `KEEL_HOST`). */
export interface ServerProcess {
  /** Its base URL, for example `http://127.0.0.1:40123`. */
  url: string;
  child: ChildProcess;
  /** SIGKILLs the whole process group, and resolves once the server has exited. */
  kill(): Promise<void>;
}

/** The environment every server process gets: free ports, cheap password hashing, the shared secret. */
function baseEnv(dataDir: string, env: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "",
    KEEL_PORT: "0",
    KEEL_ADMIN_PORT: "0",
    KEEL_HOST: "127.0.0.1",
    KEEL_DATA_DIR: dataDir,
    KEEL_PASSWORD_COST: "10",
    KEEL_JWT_SECRET: testJwtSecret,
    KEEL_LOG_LEVEL: "info",
    ...env,
  };
}

/**
 * Starts `node --conditions=source packages/server/src/main.ts` in its own process group (killed
 * when the test file ends) with a fresh data directory, and waits for its "serving" log line.
 * `env` adds or overrides KEEL_* variables, for example a shared PostgreSQL database;
 * `nodeArgs` go to Node.js before the entry point (`--import` a module, for example).
 */
export async function startServerProcess(
  env: Record<string, string> = {},
  options: { nodeArgs?: string[] } = {},
): Promise<ServerProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), "keel-clients-"));
  dirs.add(dataDir);
  const args = [...(options.nodeArgs ?? []), "--conditions=source", main];
  const child = spawn(process.execPath, args, {
    env: baseEnv(dataDir, env),
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  children.add(child);
  const exited = once(child, "exit").then(() => {
    children.delete(child);
  });
  let stderr = "";
  child.stderr?.on("data", (chunk) => {
    stderr += chunk;
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  for await (const line of lines) {
    const entry = JSON.parse(line) as { msg?: string; port?: number };
    if (entry.msg === "serving gRPC, gRPC-Web and Connect" && entry.port) {
      // Keep draining stdout, or a chatty server would block on a full pipe.
      child.stdout?.resume();
      return {
        url: `${env.KEEL_TLS_CERT === undefined ? "http" : "https"}://${env.KEEL_HOST ?? "127.0.0.1"}:${entry.port}`,
        child,
        async kill() {
          if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
            process.kill(-child.pid, "SIGKILL");
          }
          await exited;
        },
      };
    }
  }
  await exited;
  throw new Error(`the server exited before serving: ${stderr}`);
}

/** What one of the server's commands (`token`, `certs`, …) prints. */
export async function serverCommand(args: string[]): Promise<string> {
  const dataDir = mkdtempSync(join(tmpdir(), "keel-clients-command-"));
  dirs.add(dataDir);
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--conditions=source", main, ...args],
    { env: baseEnv(dataDir, {}) },
  );
  return stdout.trim();
}

/** An access token for user 1 with the given roles, from the server's own `token` command. */
export function mintToken(roles: string[] = ["admin"]): Promise<string> {
  return serverCommand(["token", "--user-id", "1", "--roles", roles.join(",")]);
}
