import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

// The real server, run from its sources like every test in the workspace. Not imported: the server
// depends on this package, so the console reaches it only as a process.
const main = fileURLToPath(new URL("../../../server/src/main.ts", import.meta.url));

export interface KeelServer {
  /** Its API port, for example `http://127.0.0.1:40123`. */
  url: string;
  /** Every line it wrote to stdout and stderr so far, to explain a failure. */
  output: string[];
  /** Kills its process group and removes its data directory. */
  stop(): Promise<void>;
}

/**
 * Starts `node --conditions=source packages/server/src/main.ts` in its own process group, on free
 * ports of 127.0.0.1, with a fresh data directory, a cheap password hash and `env` on top, and
 * resolves once it logs that it is serving.
 */
export async function startKeelServer(env: Record<string, string> = {}): Promise<KeelServer> {
  const dataDir = await mkdtemp(join(tmpdir(), "keel-console-"));
  const child: ChildProcess = spawn(process.execPath, ["--conditions=source", main], {
    env: {
      PATH: process.env.PATH ?? "",
      KEEL_PORT: "0",
      KEEL_ADMIN_PORT: "0",
      KEEL_HOST: "127.0.0.1",
      KEEL_DATA_DIR: dataDir,
      KEEL_PASSWORD_COST: "10",
      KEEL_JWT_SECRET: randomBytes(33).toString("base64url"),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const stop = async () => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      process.kill(-child.pid, "SIGKILL");
      await exited;
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on("line", (line) => {
    output.push(line);
  });
  // Every line is read, also after the "serving" one: a full pipe would block the server.
  const serving = new Promise<string>((resolve) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      output.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === "serving gRPC, gRPC-Web and Connect" && entry.port) {
          resolve(`http://127.0.0.1:${entry.port}`);
        }
      } catch {
        // Not a log entry: kept in `output` all the same.
      }
    });
  });
  const url = await Promise.race([serving, exited.then(() => undefined)]);
  if (url === undefined) {
    await stop();
    throw new Error(`the keel server exited before serving:\n${output.join("\n")}`);
  }
  return { url, output, stop };
}
