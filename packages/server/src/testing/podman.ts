import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { root } from "./repo.ts";

const run = promisify(execFile);

/** podman's settings for the container scripts (runc, cgroupfs, no default ulimits). */
const env = {
  ...process.env,
  CONTAINERS_CONF: join(root, "scripts", "container", "containers.conf"),
};

/**
 * Why the container tests cannot run here, or undefined when they can. A missing podman is a
 * reason to skip on a developer's machine, never in CI (`CI=true`): there `podman()` fails.
 */
export function podmanSkipReason(): string | undefined {
  const found = (process.env.PATH ?? "")
    .split(delimiter)
    .some((dir) => dir !== "" && existsSync(join(dir, "podman")));
  if (found || process.env.CI === "true") return undefined;
  return "podman is not installed: run scripts/ci-system-deps.sh (as root) to build and run the image";
}

/** Runs `command` to its end; its standard output, trimmed. Fails with its standard error. */
async function exec(command: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(command, args, { env, maxBuffer: 64 << 20 });
    return stdout.trim();
  } catch (error) {
    const { stderr, code } = error as { stderr?: string; code?: number | string };
    throw new Error(`${command} ${args.join(" ")} failed (${code}):\n${stderr ?? error}`);
  }
}

/** Runs `podman …` to its end; its standard output, trimmed. Fails with its standard error. */
export const podman = (...args: string[]) => exec("podman", args);

/**
 * Builds deploy/Dockerfile with scripts/container/build-image.sh (which first makes the base image
 * when it is missing) and tags it `tag`; the image's ID. Its output is shown only on failure.
 */
export async function buildImage(tag: string): Promise<string> {
  const stdout = await exec("bash", [join(root, "scripts", "container", "build-image.sh"), tag]);
  const id = stdout.split("\n").at(-1) ?? "";
  assert.match(id, /^sha256:[0-9a-f]{64}$/, `build-image.sh printed no image ID:\n${stdout}`);
  return id;
}

/** A container run in the foreground by `podman run`, its logs on the pipe. */
export interface Container {
  name: string;
  child: ChildProcess;
  /** The server's log lines so far, parsed. */
  logs: { msg?: string; [key: string]: unknown }[];
  /** Resolves when the server logs that it serves; rejects when the container ends before. */
  serving: Promise<void>;
  /** The exit code of `podman run`: the container's own (137 when it was killed). */
  exited: Promise<{ code: number | null; stderr: string }>;
}

/** `podman run --name name …args`, attached, so that it ends when the container ends. */
export function runContainer(name: string, args: string[]): Container {
  const child = spawn("podman", ["run", "--name", name, ...args], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk) => {
    stderr += chunk;
  });
  const exited = once(child, "exit").then(([code]) => ({ code: code as number | null, stderr }));
  const logs: Container["logs"] = [];
  const serving = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      let entry: Container["logs"][number];
      try {
        entry = JSON.parse(line) as Container["logs"][number];
      } catch {
        entry = { msg: line };
      }
      logs.push(entry);
      if (entry.msg === "serving gRPC, gRPC-Web and Connect") resolve();
    });
    void exited.then(({ code }) =>
      reject(new Error(`${name} exited (${code}) before serving: ${stderr}`)),
    );
  });
  // The rejection is the test's to see, through `serving`, once it awaits it.
  serving.catch(() => {});
  return { name, child, logs, serving, exited };
}

/** host:port where podman published the container's `port` (`-p 127.0.0.1::port`). */
export async function hostAddress(name: string, port: number): Promise<string> {
  const published = await podman("port", name, `${port}/tcp`);
  assert.match(published, /^127\.0\.0\.1:\d+$/, `${name}: ${port} is not published`);
  return published;
}
