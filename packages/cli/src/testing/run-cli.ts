import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const cliMain = fileURLToPath(new URL("../main.ts", import.meta.url));

/**
 * Node's on-disk compile cache for the processes the tests start: the CLI and the server run from
 * TypeScript sources, and most of a short run is spent compiling them.
 */
export const compileCache = join(tmpdir(), "keel-cli-test-compile-cache");

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `keel <args>` as its own process (`node --conditions=source src/main.ts`), with only PATH,
 * the compile cache and `env` in its environment; killed after `timeoutMs` (default 20 s).
 */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 20_000,
): Promise<CliResult> {
  const child = spawn(process.execPath, ["--conditions=source", cliMain, ...args], {
    env: { PATH: process.env.PATH ?? "", NODE_COMPILE_CACHE: compileCache, ...env },
    // Not the package: nothing a run writes next to its working directory lands in the tree.
    cwd: tmpdir(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => {
    stdout += chunk;
  });
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
