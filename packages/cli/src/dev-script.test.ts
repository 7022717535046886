import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

// The repository's ./dev and executables, as a developer runs them.
const root = fileURLToPath(new URL("../../../", import.meta.url));
const dev = join(root, "dev");
const dataDir = mkdtempSync(join(tmpdir(), "keel-dev-script-"));
after(() => rmSync(dataDir, { recursive: true, force: true }));

describe("./dev", () => {
  it("prints its usage (and nothing of its own source) for help, and exits 2 when bare", () => {
    const help = spawnSync(dev, ["help"], { encoding: "utf8" });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^usage: \.\/dev <command> \[arguments\]\n/);
    for (const command of ["start", "server", "keel", "pack", "test", "build", "pnpm", "node"]) {
      assert.match(help.stdout, new RegExp(`^  ${command} `, "m"));
    }
    assert.doesNotMatch(help.stdout, /set -euo|cd "\$\(dirname/);
    const bare = spawnSync(dev, [], { encoding: "utf8" });
    assert.equal(bare.status, 2);
    assert.equal(bare.stderr, help.stdout);
  });

  it("names an unknown command, then lists the commands, and exits 2", () => {
    const result = spawnSync(dev, ["deploy"], { encoding: "utf8" });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /^\.\/dev: unknown command "deploy"; the commands are:\nusage: /);
    assert.equal(result.stdout, "");
  });

  it("starts the server saying what it does at each step, with no finished process left unreaped under it", async () => {
    const child = spawn(dev, ["start"], {
      env: {
        PATH: process.env.PATH ?? "",
        KEEL_HOST: "127.0.0.1",
        KEEL_PORT: "0",
        KEEL_ADMIN_PORT: "0",
        KEEL_DATA_DIR: dataDir,
        KEEL_JWT_SECRET: "dev-script-test-secret-dev-script-test",
      },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let stderr = "";
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    try {
      let ready: Record<string, unknown> | undefined;
      for await (const line of createInterface({ input: child.stdout })) {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry.msg === "ready") {
          ready = entry;
          break;
        }
      }
      // Each step says what it does before it starts, and how long it took once done.
      assert.match(
        stderr,
        new RegExp(
          [
            // On a fresh clone the toolchain is installed first, npm saying what it added.
            "^(toolchain: installing Node.js [^]*?)?",
            "\\./dev start: \\[1/3\\] installing dependencies with pnpm from the lockfile .*\\n",
            "\\./dev start: {7}done in \\d+ s\\n",
            "\\./dev start: \\[2/3\\] generating TypeScript from proto/ and building every package with turbo .*\\n",
            "\\./dev start: {7}done in \\d+ s\\n",
            `\\./dev start: \\[3/3\\] starting the server \\(data in ${dataDir}; Ctrl-C stops it\\)\\n$`,
          ].join(""),
        ),
      );
      // Where it answers: stdout is not a terminal here, so a JSON line rather than the banner.
      assert.match(String(ready?.api), /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.match(String(ready?.metrics), /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      // ./dev execs the server: the process started is the server, and it has no zombie child.
      const { stdout: children } = spawnSync(
        "ps",
        ["-o", "stat=,comm=", "--ppid", String(child.pid)],
        {
          encoding: "utf8",
        },
      );
      assert.doesNotMatch(children, /^\s*Z/m, children);
    } finally {
      process.kill(-(child.pid as number), "SIGKILL");
    }
  });
});

describe("the built executables on an older Node.js", () => {
  // The first `node` on PATH that is not the pinned one (the machine's own, Node 20 here).
  const older = execFileSync("bash", ["-c", "which -a node || true"], { encoding: "utf8" })
    .split("\n")
    .find((path) => path !== "" && realpathSync(path) !== realpathSync(process.execPath));
  const executables = [
    {
      name: "keel",
      main: "packages/cli/dist/main.js",
      via: "./dev keel",
      args: [["--help"], ["token", "--user-id", "1"], ["health"]],
    },
    {
      name: "keel-server",
      main: "packages/server/dist/main.js",
      via: "./dev server",
      args: [[], ["token", "--user-id", "1"], ["certs", "--out", dataDir], ["help"]],
    },
  ];
  for (const { name, main, via, args } of executables) {
    it(`${name} says in one line which Node.js it needs, and exits 1`, {
      skip: older === undefined ? "no other node on PATH" : false,
    }, () => {
      execFileSync(dev, [
        "pnpm",
        "exec",
        "turbo",
        "run",
        "build",
        "--filter=@keel/cli",
        "--output-logs=errors-only",
      ]);
      for (const arg of args) {
        const result = spawnSync(older as string, [join(root, main), ...arg], { encoding: "utf8" });
        assert.equal(result.status, 1, result.stderr);
        assert.equal(result.stdout, "");
        assert.match(
          result.stderr,
          new RegExp(
            `^${name}: needs Node\\.js 24\\.11 or newer, and \\S+ is v\\d+\\.\\d+\\.\\d+; run it with ${via.replace(".", "\\.")} … \\(the pinned Node\\.js\\), or install Node\\.js 24\\n$`,
          ),
        );
      }
    });
  }
});
