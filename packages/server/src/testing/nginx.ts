import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { read } from "./repo.ts";
import { findSystemTool } from "./system-tool.ts";

/** The nginx binary (Debian puts it in /usr/sbin, often not on PATH), or why the tests skip. */
export function findNginx():
  | { nginx: string; skip?: undefined }
  | { nginx?: undefined; skip: string } {
  const found = findSystemTool("nginx");
  return found.path === undefined ? { skip: found.skip } : { nginx: found.path };
}

/** deploy/nginx/nginx.conf with the test's port and upstreams, and temp files in `dir`. */
export function nginxConfig(port: number, upstreams: string[], dir: string): string {
  let conf = read("deploy", "nginx", "nginx.conf");
  const replaceOnce = (pattern: RegExp, by: string) => {
    const found = conf.match(new RegExp(pattern.source, "gm"))?.length ?? 0;
    assert.equal(found, 1, `nginx.conf: expected ${pattern} once, found it ${found} times`);
    conf = conf.replace(pattern, by);
  };
  replaceOnce(/listen 8080 http2;/, `listen 127.0.0.1:${port} http2;`);
  replaceOnce(
    /^( *)server keel-1:9090;\n *server keel-2:9090;$/m,
    upstreams.map((u) => `$1server ${u};`).join("\n"),
  );
  // Debian's nginx keeps temp files in /var/lib/nginx, which only root may write to.
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((t) => `  ${t}_temp_path ${join(dir, t)};`)
    .join("\n");
  replaceOnce(/^http \{$/m, `http {\n${temp}`);
  // A file the test reads: nginx cannot open /dev/stdout when it is a socket, as Node's pipes are.
  replaceOnce(/access_log \/dev\/stdout keel;/, `access_log ${join(dir, "access.log")} keel;`);
  return conf;
}

/** One line of nginx's access log (log_format keel). */
export interface AccessLogEntry {
  request_id: string;
  path: string;
  status: number;
  grpc_status: string;
  upstream: string;
}

export interface Nginx {
  /** The access log line of a request, once nginx wrote it. */
  logged(requestId: string): Promise<AccessLogEntry>;
  stop(): Promise<void>;
}

/**
 * Runs nginx in the foreground in its own process group, with `conf` and its pid, logs and temp
 * files in `dir`, and waits until it accepts connections on `port`.
 */
export async function startNginx(
  nginx: string,
  dir: string,
  conf: string,
  port: number,
): Promise<Nginx> {
  const path = join(dir, "nginx.conf");
  writeFileSync(path, conf);
  const child = spawn(
    nginx,
    ["-p", dir, "-c", path, "-e", "stderr", "-g", `daemon off; pid ${join(dir, "nginx.pid")};`],
    { stdio: ["ignore", "ignore", "pipe"], detached: true },
  );
  // Even if the test process dies before its `after` hooks: never leave nginx running.
  const kill = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  };
  process.once("exit", kill);
  const exited = once(child, "exit");
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });

  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    const socket = connect(port, "127.0.0.1");
    const connected = await new Promise<boolean>((resolve) => {
      socket.once("connect", () => resolve(true)).once("error", () => resolve(false));
    });
    socket.destroy();
    if (connected) break;
    if (Date.now() > deadline) throw new Error(`nginx is not listening on ${port}: ${stderr}`);
    await sleep(50);
  }
  const accessLog = join(dir, "access.log");
  return {
    logged: (requestId) =>
      eventually(`nginx's log line of ${requestId}`, () =>
        readFileSync(accessLog, "utf8")
          .split("\n")
          .filter((line) => line !== "")
          .map((line) => JSON.parse(line) as AccessLogEntry)
          .find((e) => e.request_id === requestId),
      ),
    async stop() {
      process.off("exit", kill);
      if (child.exitCode !== null) return;
      // TERM: fast shutdown, open streams included. KILL if that takes too long.
      if (child.pid !== undefined) process.kill(-child.pid, "SIGTERM");
      const timer = setTimeout(kill, 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `find` until it returns something. */
export async function eventually<T>(what: string, find: () => T | undefined): Promise<T> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
