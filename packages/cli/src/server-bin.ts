import { execFile, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { UsageError } from "./usage-error.ts";

/**
 * The server's executable (`keel-server`), run as a process of its own rather than imported:
 * nothing imports the server package. It runs on this Node, with this process's flags (so the
 * `source` condition carries over in development).
 */
function serverMain(): string {
  return fileURLToPath(import.meta.resolve("@keel/server/main"));
}

/** Runs `keel-server <args>` in the foreground, passing signals on; resolves to its exit code. */
export function runServerProcess(args: string[]): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, serverMain(), ...args], {
    stdio: "inherit",
  });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on("SIGTERM", forward);
  process.on("SIGINT", forward);
  return new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      process.off("SIGTERM", forward);
      process.off("SIGINT", forward);
      resolve(code ?? (signal === null ? 1 : 128));
    });
  });
}

/** Runs `keel-server <args>` and returns what it prints; its usage errors become ours (exit 2). */
export function serverOutput(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [...process.execArgv, serverMain(), ...args],
      (err, stdout, stderr) => {
        if (err === null) {
          resolve(stdout.trim());
          return;
        }
        const message =
          stderr
            .trim()
            .split("\n")[0]
            ?.replace(/^keel-server: /, "") || err.message;
        reject(
          (err as { code?: number }).code === 2 ? new UsageError(message) : new Error(message),
        );
      },
    );
  });
}
