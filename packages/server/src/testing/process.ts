import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { after } from "node:test";
import { fileURLToPath } from "node:url";

const main = fileURLToPath(new URL("../main.ts", import.meta.url));
const children = new Set<ChildProcess>();
after(() => {
  for (const child of children) if (child.pid) process.kill(-child.pid, "SIGKILL");
});

export interface ServerProcess {
  child: ChildProcess;
  exited: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/**
 * Runs the server process as `node src/main.ts` with the real Node binary, in its own process
 * group (killed when the test file ends), listening on a free port of 127.0.0.1, in `cwd`
 * (default this process's: give one when relative paths such as the default data directory matter).
 */
export function runServer(
  env: Record<string, string>,
  args: string[] = [],
  cwd?: string,
): ServerProcess {
  const child = spawn(process.execPath, ["--conditions=source", main, ...args], {
    env: {
      PATH: process.env.PATH ?? "",
      KEEL_PORT: "0",
      KEEL_ADMIN_PORT: "0",
      KEEL_HOST: "127.0.0.1",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
    ...(cwd === undefined ? {} : { cwd }),
  });
  children.add(child);
  child.once("exit", () => children.delete(child));
  let stderr = "";
  let stdout = "";
  child.stderr?.on("data", (chunk) => {
    stderr += chunk;
  });
  // Commands print their result; a serving process's stdout is read by servingUrl instead.
  if (args.length > 0) {
    child.stdout?.on("data", (chunk) => {
      stdout += chunk;
    });
  }
  const exited = once(child, "exit").then(([code]) => ({
    code: code as number | null,
    stdout,
    stderr,
  }));
  return { child, exited };
}

/** Waits for the server's "serving" log line and returns its base URL. */
export async function servingUrl(server: ServerProcess): Promise<string> {
  const lines = createInterface({ input: server.child.stdout as NodeJS.ReadableStream });
  for await (const line of lines) {
    const entry = JSON.parse(line) as { msg?: string; port?: number };
    if (entry.msg === "serving gRPC, gRPC-Web and Connect" && entry.port) {
      return `http://127.0.0.1:${entry.port}`;
    }
  }
  throw new Error(`the server exited before serving: ${(await server.exited).stderr}`);
}

/** The JSON log lines a server writes from now on (servingUrl has read those before). */
export function followLogs(server: ServerProcess): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  const stdout = server.child.stdout as NodeJS.ReadableStream;
  createInterface({ input: stdout }).on("line", (line) => {
    if (line.startsWith("{")) lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  stdout.resume();
  return lines;
}

/**
 * The admin port from the first log line with this message ("serving gRPC, gRPC-Web and
 * Connect", or a cluster primary's "cluster started"); the rest of the output is read and dropped.
 */
export async function adminPortOf(server: ServerProcess, message: string): Promise<number> {
  const lines = createInterface({ input: server.child.stdout as NodeJS.ReadableStream });
  for await (const line of lines) {
    const entry = JSON.parse(line) as { msg?: string; adminPort?: number };
    if (entry.msg === message && entry.adminPort) {
      // Keep reading, so that the server never blocks on a full pipe.
      lines.on("line", () => {});
      return entry.adminPort;
    }
  }
  throw new Error(`the server exited before logging ${message}: ${(await server.exited).stderr}`);
}
