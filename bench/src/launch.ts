import { type ChildProcess, execFileSync, type StdioOptions, spawn } from "node:child_process";
import { cpus } from "node:os";

// Each process gets the most open files it may have (10,000 connections need 10,000 sockets),
// then becomes the command itself (exec), so the pid we hold is the command's.
const raiseFdLimit = 'ulimit -n "$(ulimit -Hn)" && exec "$@"';

export interface LaunchOptions {
  /**
   * The one CPU to run on (taskset -c); undefined: any of them (said explicitly, since the
   * harness itself is pinned and children inherit its affinity).
   */
  cpu?: number | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Default: stdin ignored, stdout and stderr piped. */
  stdio?: StdioOptions;
}

// Every process started here and still running, so an interrupted run can stop them all.
const running = new Set<ChildProcess>();

/** Starts `argv` with the open-file limit raised, pinned to one CPU when asked. */
export function launch(argv: readonly string[], options: LaunchOptions = {}): ChildProcess {
  const cpuList = options.cpu === undefined ? `0-${cpus().length - 1}` : String(options.cpu);
  const child = spawn("taskset", ["-c", cpuList, "bash", "-c", raiseFdLimit, "bench", ...argv], {
    env: options.env ?? process.env,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdio: options.stdio ?? ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  child.once("exit", () => running.delete(child));
  return child;
}

/** Kills (SIGKILL) every process `launch` started that is still running. */
export function killAll(): void {
  for (const child of running) child.kill("SIGKILL");
}

/** What a finished command printed, and how it ended. */
export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Whether it was killed for running past its time. */
  timedOut: boolean;
}

/**
 * Waits for a command started with `launch` to end, killing it (SIGKILL) after `timeoutMs`, so
 * no load loop can run unbounded.
 */
export function finish(child: ChildProcess, timeoutMs: number): Promise<Finished> {
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  let timedOut = false;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** Runs a command to its end (see `finish`). */
export function run(
  argv: readonly string[],
  options: LaunchOptions & { timeoutMs: number },
): Promise<Finished> {
  return finish(launch(argv, options), options.timeoutMs);
}

/** Fails, saying what to install, unless the tools and the 2 CPUs the benchmarks pin to are here. */
export function preflight(): void {
  for (const [tool, hint] of [
    ["h2load", "apt-get install -y nghttp2-client"],
    ["taskset", "apt-get install -y util-linux"],
  ]) {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    } catch {
      throw new Error(`${tool} is not installed: ${hint}`);
    }
  }
  if (cpus().length < 2)
    throw new Error("the benchmark pins servers and load to 2 CPUs; this machine has 1");
}

/** On SIGINT or SIGTERM: kills every process `launch` started, says so, and exits. */
export function stopAllOnSignals(name: string): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      killAll();
      process.stderr.write(
        `${name}: stopped by ${signal}; every server and load generator killed\n`,
      );
      process.exit(130);
    });
  }
}

/** Pins this process, every thread of it, to one CPU (the harness stays off the servers' core). */
export function pinThisProcess(cpu: number): void {
  execFileSync("taskset", ["-a", "-p", "-c", String(cpu), String(process.pid)], {
    stdio: "ignore",
  });
}
