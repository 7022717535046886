import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";
import { createUserClient } from "@keel/clients";
import { openSqliteStore } from "@keel/store";
import { readSettings } from "./config.ts";
import { startTestServer, type TestServer, testSecret } from "./testing/test-server.ts";

// The commands and examples of the README and of the docs a newcomer follows first, run against a
// real server, so that none of them can rot. Every code block in these files is marked: with the
// test here that runs it (<!-- docs-test: NAME -->), or with why none does (<!-- not run: … -->,
// naming the test that covers it instead).
const root = fileURLToPath(new URL("../../../", import.meta.url));
const checked = [
  "README.md",
  "docs/api.md",
  "docs/security.md",
  "docs/configuration.md",
  "docs/operations.md",
  "docs/performance.md",
];
const run = promisify(execFile);
const cliMain = join(root, "packages/cli/src/main.ts");
const serverMain = join(root, "packages/server/src/main.ts");

interface Block {
  file: string;
  /** The line of the opening fence, counting from 1. */
  line: number;
  language: string;
  code: string;
  /** The name of the test that runs it, or why none does; undefined when unmarked. */
  marker: { test: string } | { notRun: string } | undefined;
}

/** The fenced code blocks of `file`, each with the marker on the line before it. */
function blocksOf(file: string): Block[] {
  const lines = readFileSync(join(root, file), "utf8").split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)$/.exec(lines[i] as string);
    if (open === null) continue;
    const end = lines.indexOf("```", i + 1);
    assert.ok(end > i, `${file}:${i + 1}: a code block that never ends`);
    const before = lines[i - 1] ?? "";
    const test = /^<!-- docs-test: ([\w-]+) -->$/.exec(before)?.[1];
    const notRun = /^<!-- not run(?: here)?: (.+) -->$/.exec(before)?.[1];
    blocks.push({
      file,
      line: i + 1,
      language: open[1] ?? "",
      code: lines.slice(i + 1, end).join("\n"),
      marker: test !== undefined ? { test } : notRun !== undefined ? { notRun } : undefined,
    });
    i = end;
  }
  return blocks;
}

const blocks = checked.flatMap(blocksOf);

/**
 * A shell block as this test runs it: `./dev keel`, `./dev server` and `./dev node` as the pinned
 * Node.js (this process's) running the sources, buf from the workspace, the server's URL for
 * 127.0.0.1:9090. Any other ./dev command is a mistake of this test's.
 */
function localize(code: string, url: string): string {
  const node = JSON.stringify(process.execPath);
  const script = code
    .replaceAll("./dev pnpm exec buf", join(root, "node_modules/.bin/buf"))
    .replaceAll("./dev keel", `${node} --conditions=source ${cliMain}`)
    .replaceAll("./dev server", `${node} --conditions=source ${serverMain}`)
    .replaceAll("./dev node", node)
    .replaceAll("http://127.0.0.1:9090", url);
  assert.doesNotMatch(script, /\.\/dev /, "a ./dev command this test does not know how to run");
  return script;
}

/** What a block is run with: a server of its own, and the settings the commands read. */
interface Context {
  server: TestServer;
  /** KEEL_* settings of "this machine": the server's port, secret and data directory. */
  env: Record<string, string>;
  dataDir: string;
}

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups) await cleanup();
});

/** A fresh server whose SQLite file is in `dataDir`, as `./dev start` keeps it. */
async function startContext(): Promise<Context> {
  const dataDir = mkdtempSync(join(tmpdir(), "keel-docs-"));
  const server = await startTestServer({
    store: openSqliteStore({ path: join(dataDir, "keel.db") }),
  });
  cleanups.push(async () => {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const env = {
    PATH: process.env.PATH ?? "",
    KEEL_HOST: "127.0.0.1",
    KEEL_PORT: String(server.port),
    KEEL_DATA_DIR: dataDir,
    KEEL_JWT_SECRET: new TextDecoder().decode(testSecret),
  };
  return { server, env, dataDir };
}

async function runShell(block: Block, context: Context) {
  const script = localize(block.code, context.server.url);
  return run("bash", ["-e", "-o", "pipefail", "-c", script], {
    cwd: root,
    env: context.env,
    maxBuffer: 16 * 1024 * 1024,
  });
}

const ada = { username: "ada", email: "ada@example.com", password: "correct horse battery" };

/** The tests that run marked blocks, by the marker's name. */
const handlers: Record<string, (block: Block, context: Context) => Promise<void>> = {
  async "typed-client"(block, { server }) {
    const dir = join(root, "packages/server/.docs-test");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "example.ts");
    writeFileSync(file, block.code.replaceAll("http://127.0.0.1:9090", server.url));
    try {
      const { stdout } = await run(process.execPath, ["--conditions=source", file]);
      assert.match(stdout, /username: 'ada'/);
      assert.match(stdout, /email: 'ada@example\.com'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },

  async "command-line"(block, context) {
    const { stdout } = await runShell(block, context);
    // CreateUser, then GetUser twice (buf curl, then curl): user 1, grace, each time.
    assert.equal(stdout.match(/"username": ?"grace"/g)?.length, 3, stdout);
    assert.equal(stdout.match(/"userId": ?"1"/g)?.length, 3, stdout);
  },

  async keel(block, context) {
    const { stdout } = await runShell(block, context);
    assert.match(stdout, /^SERVING$/m);
    assert.match(stdout, /^seeded http:\/\/127\.0\.0\.1:\d+: 4 users, 6 orders$/m);
    assert.match(stdout, /^user\.v1\.UserService$/m);
    assert.match(stdout, /^message User \{$/m);
    assert.match(stdout, /^walkthrough against /m);
  },

  async rest(block, context) {
    const { stdout } = await runShell(block, context);
    // CreateUser answers {"user": …}; GetUser the user itself; ListOrders no orders yet ({}).
    assert.match(
      stdout,
      /^\{"user":\{"userId":"1","username":"ada",.*\}\}\{"userId":"1","username":"ada",.*\}\{\}$/,
      stdout,
    );
  },

  async token(block, context) {
    await createUserClient({ baseUrl: context.server.url }).createUser(ada);
    const { stdout } = await runShell(block, context);
    const token = stdout.trim();
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, "one JWT");
    // The server takes it as an administrator's.
    const admin = createUserClient({ baseUrl: context.server.url, token });
    assert.equal((await admin.listUsers({})).users.length, 1);
  },

  async grant(block, context) {
    const users = createUserClient({ baseUrl: context.server.url });
    await users.createUser(ada);
    const { stdout } = await runShell(block, context);
    assert.deepEqual(stdout.trim().split("\n"), [
      "user 1 (ada) now has roles: admin, fulfillment",
      "user 1 (ada) now has roles: fulfillment",
    ]);
    // From the next login on: fulfillment, not admin.
    const { accessToken } = await users.login({ username: ada.username, password: ada.password });
    const logged = createUserClient({ baseUrl: context.server.url, token: accessToken });
    await assert.rejects(
      logged.listUsers({}),
      (err: unknown) => ConnectError.from(err).code === Code.PermissionDenied,
    );
  },

  async "config-file"(block) {
    const { settings } = settingsOf(block);
    assert.equal(settings.rateLimits.methods["order.v1.OrderService/CreateOrder"]?.burst, 10);
    assert.equal(settings.shutdown.delayMs, 5000);
    assert.deepEqual(settings.auth.oidc?.audience, ["keel-api"]);
    assert.equal(settings.tls?.watch, true);
  },

  async oidc(block) {
    const { oidc } = settingsOf(block).settings.auth;
    assert.equal(oidc?.issuer, "https://idp.example/realms/shop");
    assert.deepEqual(oidc?.audience, ["keel-api"]);
    assert.equal(oidc?.rolesClaim, "realm_access.roles");
    assert.deepEqual(oidc?.roleMapping, { "shop-admin": "admin", warehouse: "fulfillment" });
  },

  async "key-rotation"(block) {
    const { auth } = settingsOf(block).settings;
    assert.equal(auth.jwtSecret, "the new key, at least 32 characters");
    assert.deepEqual(auth.acceptedJwtSecrets, ["the old key, at least 32 characters"]);
  },

  async "load-shedding"(block) {
    const { settings } = settingsOf(block);
    assert.equal(settings.loadShedding.enabled, true);
    assert.equal(settings.loadShedding.eventLoopDelayMs, 50);
    // About 80% and 90% of a 1 GiB container, as the text says.
    assert.equal(settings.memoryLimits.rssSoftBytes, Math.floor(0.8 * 1024 ** 3));
    assert.equal(settings.memoryLimits.rssHardBytes, Math.floor(0.9 * 1024 ** 3));
  },
};

/** The settings a YAML block gives, read as the server reads its configuration file. */
function settingsOf(block: Block): ReturnType<typeof readSettings> {
  const dir = mkdtempSync(join(tmpdir(), "keel-docs-config-"));
  try {
    const path = join(dir, "keel.yaml");
    writeFileSync(path, block.code);
    return readSettings({ KEEL_CONFIG: path });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("the docs' code blocks", () => {
  it("are each run by a test here, or say why not", () => {
    const unmarked = blocks.filter((b) => b.marker === undefined).map((b) => `${b.file}:${b.line}`);
    assert.deepEqual(
      unmarked,
      [],
      "mark each with <!-- docs-test: NAME --> or <!-- not run: why -->",
    );
    for (const block of blocks) {
      const marker = block.marker;
      if (marker !== undefined && "test" in marker) {
        assert.ok(
          marker.test in handlers,
          `${block.file}:${block.line}: no test named ${marker.test}`,
        );
      } else if (marker !== undefined) {
        assert.ok(marker.notRun.length >= 30, `${block.file}:${block.line}: say why it is not run`);
      }
    }
    const used = new Set(
      blocks.flatMap((b) => (b.marker && "test" in b.marker ? [b.marker.test] : [])),
    );
    assert.deepEqual(
      Object.keys(handlers).filter((name) => !used.has(name)),
      [],
      "a test for a block that no longer exists",
    );
  });

  it("hold one table of settings, docs/configuration.md's, generated from the schema", () => {
    const pages = [
      "README.md",
      ...readdirSync(join(root, "docs"))
        .filter((name) => name.endsWith(".md"))
        .map((name) => `docs/${name}`),
    ];
    const tables = pages.filter((page) =>
      /^\| Variable +\|/m.test(readFileSync(join(root, page), "utf8")),
    );
    assert.deepEqual(tables, ["docs/configuration.md"]);
  });

  it("never run a bare node command: the machine's Node.js may not be 24", () => {
    const bare = blocks
      .filter((b) => b.language === "sh")
      .flatMap((b) =>
        b.code
          .split("\n")
          .filter((line) => /(^|[;&|(]\s*)node\s/.test(line))
          .map((line) => `${b.file}:${b.line}: ${line}`),
      );
    assert.deepEqual(bare, []);
  });

  for (const block of blocks) {
    const marker = block.marker;
    if (marker === undefined || !("test" in marker)) continue;
    const handler = handlers[marker.test];
    if (handler === undefined) continue;
    it(`${marker.test} (${block.file}:${block.line}) runs`, async () => {
      await handler(block, await startContext());
    });
  }
});

// A newcomer's first hour, as CI can play it: a fresh clone of this commit, the README's first
// command, then every command of the README, the API and security pages in the order they come,
// with ./dev itself (the pinned toolchain it installs), against the one server ./dev start runs.
const walkthrough = process.env.CI === "true" || process.env.KEEL_TEST_WALKTHROUGH === "1";

/** The variables of this environment that say how to reach a registry: a CA, a proxy. */
function networkSettings(): Record<string, string> {
  const names = /^(NODE_EXTRA_CA_CERTS|SSL_CERT_FILE|SSL_CERT_DIR|(HTTPS?|NO|ALL)_PROXY)$/i;
  return Object.fromEntries(
    Object.entries(process.env).filter(
      (entry): entry is [string, string] => names.test(entry[0]) && entry[1] !== undefined,
    ),
  );
}

describe("a newcomer's walkthrough on a fresh clone", {
  skip: walkthrough
    ? false
    : "a fresh install and build take minutes: runs with CI=true or KEEL_TEST_WALKTHROUGH=1",
}, () => {
  it("clone, ./dev start, then each documented command in order", {
    timeout: 30 * 60_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "keel-walkthrough-"));
    const clone = join(dir, "keel");
    await run("git", ["clone", "--quiet", root, clone]);
    const env = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? dir,
      // How this machine reaches the npm registry (its CA, a proxy), as a newcomer's shell would
      // have it; without, npm retries for minutes before it uses its cache.
      ...networkSettings(),
      KEEL_HOST: "127.0.0.1",
      // The build this checkout has cached: CI checks a build from nothing on its own fresh clone,
      // so here the clone replays it instead of compiling every package again.
      TURBO_CACHE_DIR: join(root, ".turbo", "cache"),
    };
    const start = spawn(join(clone, "dev"), ["start"], {
      cwd: clone,
      env: { ...env, KEEL_PORT: "0", KEEL_ADMIN_PORT: "0" },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let startErr = "";
    start.stderr.on("data", (chunk) => {
      startErr += chunk;
    });
    try {
      let api: string | undefined;
      for await (const line of createInterface({ input: start.stdout })) {
        // The server's log, JSON lines only: nothing the installation prints goes to stdout.
        assert.ok(line.startsWith("{"), `./dev start wrote ${JSON.stringify(line)} to stdout`);
        const entry = JSON.parse(line) as { msg?: string; api?: string };
        if (entry.msg === "ready") {
          api = entry.api;
          break;
        }
      }
      assert.ok(api, `./dev start never said where it serves:\n${startErr}`);
      assert.match(startErr, /\[3\/3\] starting the server/);
      start.stdout.resume();
      const port = new URL(api).port;
      const failures: string[] = [];
      for (const block of blocks) {
        const marker = block.marker;
        if (marker === undefined || !("test" in marker) || block.language === "yaml") continue;
        const where = `${block.file}:${block.line} (${marker.test})`;
        const code = block.code.replaceAll("127.0.0.1:9090", `127.0.0.1:${port}`);
        try {
          if (block.language === "ts") {
            const file = join(clone, "packages/server/walkthrough-example.ts");
            writeFileSync(file, code);
            const { stdout } = await run(
              join(clone, "dev"),
              ["node", "--conditions=source", file],
              {
                env: { ...env, KEEL_PORT: port },
              },
            );
            assert.match(stdout, /username: 'ada'/);
          } else {
            await run("bash", ["-e", "-o", "pipefail", "-c", code], {
              cwd: clone,
              env: { ...env, KEEL_PORT: port },
              maxBuffer: 16 * 1024 * 1024,
            });
          }
        } catch (err) {
          const { stderr, message } = err as { stderr?: string; message: string };
          failures.push(`${where}: ${stderr || message}`);
        }
      }
      assert.deepEqual(failures, []);
    } finally {
      if (start.pid !== undefined && start.exitCode === null) process.kill(-start.pid, "SIGTERM");
      await new Promise((resolve) =>
        start.exitCode === null ? start.once("exit", resolve) : resolve(null),
      );
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
