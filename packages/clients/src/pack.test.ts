import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { mintToken, startServerProcess } from "./testing/server-process.ts";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../../", import.meta.url));
const dev = join(root, "dev");
const work = mkdtempSync(join(tmpdir(), "keel-clients-pack-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** What another team writes: TypeScript against the published types, run by Node as it is. */
const program = `import { createOrderClient, createUserClient, type UserClient } from "@keel/clients";

const [url = "", token = ""] = process.argv.slice(2);
// The second endpoint refuses connections: the clients must route around it.
const endpoints = [url, "http://127.0.0.1:1"];
const users: UserClient = createUserClient({ endpoints, token, balancing: "round_robin" });
const orders = createOrderClient({ endpoints, token, gzip: true });
const { user } = await users.createUser({
  username: "otherteam",
  email: "other@example.com",
  password: "correct horse battery",
});
const userId = user?.userId ?? 0n;
const items = [
  { sku: "S", name: "Sock", quantity: 3, unitPrice: { currencyCode: "EUR", amountMinor: 250n } },
];
const { order } = await orders.createOrder({ userId, items, idempotencyKey: "first" });
const again = await orders.createOrder({ userId, items, idempotencyKey: "first" });
const fetched = await users.getUser({ userId });
console.log(
  JSON.stringify({
    username: fetched.user?.username,
    total: String(order?.total?.amountMinor),
    sameOrder: again.order?.orderId === order?.orderId,
  }),
);
`;

/**
 * The environment for npm: this process's, without the `npm_*` and `pnpm_*` variables pnpm hands
 * the scripts it runs (they are the workspace's settings, its global config file among them, not
 * those of a project outside it). turbo passes a task few variables: a machine whose registry
 * traffic needs its own CA bundle still names it in SSL_CERT_FILE or NIX_SSL_CERT_FILE.
 */
function npmEnvironment(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^p?npm_/i.test(name)),
  );
  env.NODE_EXTRA_CA_CERTS ??= env.SSL_CERT_FILE ?? env.NIX_SSL_CERT_FILE;
  return env;
}

describe("the packed packages, installed outside the workspace", () => {
  it("import and call a running server the way another team's code does", {
    timeout: 120_000,
  }, async () => {
    const serving = startServerProcess();
    const minted = mintToken(["admin"]);

    // Exactly what the documented command writes (it builds first; turbo restores CI's build
    // from its cache when nothing changed), and nothing else.
    const tarballs = join(work, "tarballs");
    const { stdout: written } = await run(dev, ["pack", tarballs]);
    const packed = written.trim().split("\n");
    assert.deepEqual(
      packed.map((file) => basename(file)),
      ["keel-clients-0.1.0.tgz", "keel-gen-0.1.0.tgz", "keel-observability-0.1.0.tgz"],
    );
    assert.deepEqual(readdirSync(tarballs).sort(), packed.map((file) => basename(file)).sort());

    const app = join(work, "app");
    mkdirSync(app);
    writeFileSync(
      join(app, "package.json"),
      JSON.stringify({ name: "other-team", private: true, type: "module" }),
    );
    writeFileSync(join(app, "main.ts"), program);
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "es2023",
          module: "nodenext",
          moduleResolution: "nodenext",
          strict: true,
          noEmit: true,
          allowImportingTsExtensions: true,
          skipLibCheck: true,
          // The app has no @types/node of its own; the workspace's will do for `process`.
          typeRoots: [join(root, "packages/clients/node_modules/@types")],
          types: ["node"],
        },
        files: ["main.ts"],
      }),
    );
    await run(
      "npm",
      ["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefer-offline", ...packed],
      { cwd: app, env: npmEnvironment(), timeout: 90_000 },
    );
    // The published declarations type-check the program, resolved from node_modules alone.
    await run(dev, ["pnpm", "exec", "tsc", "-p", join(app, "tsconfig.json")]);

    const [server, token] = await Promise.all([serving, minted]);
    const { stdout } = await run(process.execPath, ["main.ts", server.url, token], {
      cwd: app,
      timeout: 30_000,
    });
    assert.deepEqual(JSON.parse(stdout), { username: "otherteam", total: "750", sameOrder: true });
  });
});
