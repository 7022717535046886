import type { ChildProcess } from "node:child_process";
import { openSync, readFileSync } from "node:fs";
import { get } from "node:http";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { launch } from "./launch.ts";

/** A server under test, listening on 127.0.0.1. */
export interface RunningTarget {
  pid: number;
  port: number;
  /**
   * Calls of one method the server has finished so far, by outcome, when it can tell (our server's
   * /metrics); the bare peers cannot.
   */
  handled?: (method: string) => Promise<{ ok: number; notOk: number }>;
  /** The server's /metrics as Prometheus text, when it serves them (our server). */
  metrics?: () => Promise<string>;
  /** SIGTERM, then SIGKILL if it has not exited within 20 s. */
  stop(): Promise<void>;
}

/** How to start one target process. */
export interface StartOptions {
  /** The one CPU it runs on; undefined: any. */
  cpu: number | undefined;
  /** Where its standard output and error go. */
  logFile: string;
}

const peersDir = fileURLToPath(new URL("./peers/", import.meta.url));

/** Starts a bare peer (`engine-peer.ts`, `connect-peer.ts` or `grpc-js-peer.ts`) on a free port. */
export async function startPeer(
  script: "engine-peer.ts" | "connect-peer.ts" | "grpc-js-peer.ts",
  options: StartOptions,
): Promise<RunningTarget> {
  const child = launch([process.execPath, "--conditions=source", `${peersDir}${script}`, "0"], {
    cpu: options.cpu,
    stdio: ["ignore", "pipe", openSync(options.logFile, "a")],
  });
  const port = await firstLine(child, 15_000).then(Number);
  return { pid: child.pid as number, port, stop: () => stop(child) };
}

/** Our server's process (packages/server/dist/main.js) and how it is configured. */
export interface KeelOptions extends StartOptions {
  main: string;
  /** KEEL_* and other variables; KEEL_HOST, KEEL_PORT and KEEL_ADMIN_PORT are added here. */
  env: Record<string, string>;
  /** Extra node flags, for example --cpu-prof (after those of the package's start script). */
  nodeFlags?: string[];
}

/**
 * The node flags the server package's `start` script (and so the Docker image) runs it with:
 * `node FLAGS… dist/main.js`, read from the package.json beside the built `main`.
 */
export function startScriptFlags(main: string): string[] {
  const pkg = JSON.parse(readFileSync(join(dirname(main), "..", "package.json"), "utf8")) as {
    scripts?: Record<string, string>;
  };
  const words = (pkg.scripts?.start ?? "").split(" ").filter(Boolean);
  return words[0] === "node" ? words.slice(1, -1) : [];
}

/** A target that exited before it was ready, with what it said. */
export class StartError extends Error {
  override readonly name = "StartError";
}

/** Starts our server on free ports and waits until /readyz answers 200. */
export async function startKeel(options: KeelOptions): Promise<RunningTarget> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const log = openSync(options.logFile, "a");
  const flags = [...startScriptFlags(options.main), ...(options.nodeFlags ?? [])];
  const child = launch([process.execPath, ...flags, options.main], {
    cpu: options.cpu,
    env: {
      ...withoutKeelVariables(process.env),
      ...options.env,
      KEEL_HOST: "127.0.0.1",
      KEEL_PORT: String(port),
      KEEL_ADMIN_PORT: String(adminPort),
    },
    stdio: ["ignore", log, log],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const admin = `http://127.0.0.1:${adminPort}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ready = await fetch(`${admin}/readyz`).then(
      (res) => res.status === 200,
      () => false,
    );
    if (ready) break;
    const code = await Promise.race([exited, sleep(100).then(() => "running" as const)]);
    if (code !== "running") {
      throw new StartError(
        `our server exited with code ${code} before it was ready (log: ${options.logFile})`,
      );
    }
    if (Date.now() > deadline) {
      await stop(child);
      throw new StartError(`our server was not ready within 30 s (log: ${options.logFile})`);
    }
  }
  // On a connection of its own, closed after the answer: a keep-alive one left open would count
  // among the server's descriptors in a load that counts its connections.
  const metrics = () => getOnce(`${admin}/metrics`);
  return {
    pid: child.pid as number,
    port,
    handled: async (method) => handledCalls(await metrics(), method),
    metrics,
    stop: () => stop(child),
  };
}

/**
 * Sums `grpc_server_handled_total` of one method (`user.v1.UserService/GetUser`) from Prometheus
 * text, split into OK and every other code.
 */
export function handledCalls(metrics: string, method: string): { ok: number; notOk: number } {
  const [service, name] = method.split("/");
  const result = { ok: 0, notOk: 0 };
  for (const line of metrics.split("\n")) {
    if (!line.startsWith("grpc_server_handled_total{")) continue;
    if (!line.includes(`grpc_service="${service}"`) || !line.includes(`grpc_method="${name}"`))
      continue;
    const value = Number(
      line
        .slice(line.lastIndexOf("}") + 1)
        .trim()
        .split(" ")[0],
    );
    if (line.includes('grpc_code="OK"')) result.ok += value;
    else result.notOk += value;
  }
  return result;
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        resolve(typeof address === "object" && address !== null ? address.port : 0),
      );
    });
  });
}

/** Our own settings only: a KEEL_* variable of the calling shell must not change what is measured. */
function withoutKeelVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith("KEEL_")));
}

function firstLine(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new StartError(`no port printed within ${timeoutMs} ms`));
    }, timeoutMs);
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      text += chunk;
      const end = text.indexOf("\n");
      if (end >= 0) {
        clearTimeout(timer);
        resolve(text.slice(0, end).trim());
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new StartError(`exited with code ${code} before printing its port`));
    });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  await exited;
  clearTimeout(timer);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The body of a GET of `url`, on a connection of its own that is closed after it. */
function getOnce(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () =>
        res.statusCode === 200
          ? resolve(body)
          : reject(new Error(`GET ${url}: HTTP ${res.statusCode}`)),
      );
      res.on("error", reject);
    }).on("error", reject);
  });
}
