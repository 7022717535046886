import assert from "node:assert/strict";
import { once } from "node:events";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import { froms, inStage, instructions, runHealthcheck, runtime } from "./testing/dockerfile.ts";
import { read, root } from "./testing/repo.ts";

// deploy/Dockerfile and .dockerignore, line by line, for what building and running the image
// (container.test.ts) cannot show: that the image runs CI's Node.js with the start script's flags,
// that dependency layers come before the sources, what it refuses to install or copy, and how its
// HEALTHCHECK fails.

describe("deploy/Dockerfile", () => {
  it("builds on node:<.nvmrc>-bookworm-slim in two stages", () => {
    assert.ok(froms.length >= 2, "multi-stage: a build stage and a runtime stage");
    for (const from of froms)
      assert.match(from.args, /^node:\$\{NODE_VERSION\}-bookworm-slim AS \w+$/);
    const version = inStage(0, "ARG").find((a) => a.startsWith("NODE_VERSION="));
    assert.equal(version, `NODE_VERSION=${read(".nvmrc").trim()}`);
  });

  it("downloads dependencies before it copies the sources, so a change of sources reuses them", () => {
    const build = instructions.filter((i) => i.stage === 1);
    const sources = build.findIndex((i) => i.keyword === "COPY" && /^\. \.$/.test(i.args));
    assert.ok(sources > 0, "COPY . . is missing");
    const before = build.slice(0, sources);
    // Only the manifests the download depends on are copied before it.
    const copied = before.filter((i) => i.keyword === "COPY").flatMap((i) => i.args.split(/\s+/));
    assert.deepEqual(copied.filter((f) => !f.endsWith("/")).sort(), [
      "package.json",
      "pnpm-lock.yaml",
      "pnpm-workspace.yaml",
    ]);
    assert.ok(before.some((i) => i.keyword === "RUN" && /^pnpm fetch\b/.test(i.args)));
  });

  it("installs from the frozen lockfile and deploys production dependencies only", () => {
    const runs = inStage(1, "RUN").join("\n");
    assert.match(runs, /pnpm install --frozen-lockfile/);
    assert.match(runs, /^pnpm --filter @keel\/server deploy --prod .*\/out$/m);
    // Nothing is installed or built in the runtime stage; everything comes from /out.
    for (const copy of inStage(runtime, "COPY")) assert.match(copy, /^--from=build \/out\//);
    assert.doesNotMatch(inStage(runtime, "RUN").join("\n"), /\b(pnpm|npm|corepack|yarn)\b/);
    const copied = inStage(runtime, "COPY").map((c) => c.split(/\s+/).at(-1));
    assert.deepEqual(copied.sort(), ["./dist", "./node_modules", "./package.json"]);
    assert.match(inStage(runtime, "ENV").join(" "), /\bNODE_ENV=production\b/);
  });

  it("starts the server's bin with the start script's node flags, and exposes 9090 and 9091", () => {
    const pkg = JSON.parse(read("packages", "server", "package.json")) as {
      bin: Record<string, string>;
      scripts: Record<string, string>;
    };
    const main = pkg.bin["keel-server"]?.replace(/^\.\//, "");
    // The image starts the server exactly as the package's start script does, flags included.
    const start = pkg.scripts.start?.split(" ") ?? [];
    assert.equal(start.at(-1), main);
    assert.ok(start.includes("--heap-growing-percent=20"), pkg.scripts.start);
    assert.deepEqual(JSON.parse(inStage(runtime, "ENTRYPOINT")[0] ?? "[]"), start);
    assert.deepEqual(inStage(runtime, "EXPOSE"), ["9090 9091"]);
  });

  it("has a HEALTHCHECK that passes only while /readyz answers 2xx", async () => {
    let ready = false;
    const admin = createHttpServer((req, res) => {
      res.statusCode = req.url === "/readyz" && ready ? 200 : 503;
      res.end();
    }).listen(0, "127.0.0.1");
    await once(admin, "listening");
    const { port } = admin.address() as AddressInfo;
    assert.equal(await runHealthcheck(port), 1);
    ready = true;
    assert.equal(await runHealthcheck(port), 0);
    admin.close();
    await once(admin, "close");
    assert.equal(await runHealthcheck(port), 1, "nothing listening");
  });

  it("has a context allow-list that keeps local data, .git and node_modules out", () => {
    const rules = read(".dockerignore")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    assert.equal(rules[0], "*", "everything is excluded unless allowed");
    for (const allowed of rules.filter((r) => r.startsWith("!"))) {
      assert.ok(existsSync(join(root, allowed.slice(1))), `${allowed}: no such path`);
      assert.doesNotMatch(allowed, /^!(data|\.git|toolchain)\b/);
    }
    assert.ok(rules.includes("**/node_modules"));
    assert.ok(rules.includes("**/dist"));
  });

  it("leaves out of the context everything git ignores (what builds and tests leave behind)", () => {
    const rules = new Set(
      read(".dockerignore")
        .split("\n")
        .map((l) => l.trim()),
    );
    const allowed = [...rules]
      .filter((r) => r.startsWith("!"))
      .map((r) => r.slice(1).replace(/\/$/, ""));
    const ignoredByGit = read(".gitignore")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#") && !l.startsWith("!"));
    for (const pattern of ignoredByGit) {
      // git: a pattern without an inner slash matches at any depth; with one, from the root.
      const path = pattern.replace(/\/$/, "");
      const docker = path.includes("/") ? path.replace(/^\//, "") : `**/${path}`;
      const inContext = allowed.some((a) => docker === a || docker.startsWith(`${a}/`));
      const underAllowed = docker.startsWith("**/") || inContext;
      assert.ok(
        !underAllowed || rules.has(docker),
        `.gitignore ignores ${pattern}; add ${docker} to .dockerignore, or a test's leftovers reach the image and every build's COPY . . misses the cache`,
      );
    }
  });

  it("deploys every package the server imports at run time (pnpm deploy --prod skips the rest)", () => {
    const pkg = JSON.parse(read("packages", "server", "package.json")) as {
      dependencies: Record<string, string>;
    };
    const missing = new Set<string>();
    for (const file of runtimeSources(join(root, "packages", "server", "src"))) {
      for (const name of importedPackages(readFileSync(file, "utf8"))) {
        if (!(name in pkg.dependencies)) missing.add(`${name} (${file.slice(root.length)})`);
      }
    }
    assert.deepEqual(
      [...missing],
      [],
      "move these to dependencies in packages/server/package.json",
    );
  });
});

/** The server's .ts files that run in production: no tests, no test helpers. */
function runtimeSources(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && !f.startsWith("testing"))
    .map((f) => join(dir, f));
}

/** Packages a module imports at run time (type-only imports are erased). */
function importedPackages(source: string): Set<string> {
  const names = new Set<string>();
  const specifiers = [
    ...source.matchAll(/^\s*(?:import|export)(\s+type)?\s[^;]*?\bfrom\s+"([^"]+)"/gm),
  ]
    .filter((m) => m[1] === undefined)
    .map((m) => m[2] ?? "");
  specifiers.push(...[...source.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g)].map((m) => m[1] ?? ""));
  for (const spec of specifiers) {
    if (spec.startsWith(".") || spec.startsWith("node:")) continue;
    const parts = spec.split("/");
    names.add(spec.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? spec));
  }
  return names;
}
