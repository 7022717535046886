import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { startTestServer } from "./testing/test-server.ts";

// The README's examples, run against a real server, so that the README cannot rot.
const root = fileURLToPath(new URL("../../../", import.meta.url));
const readme = readFileSync(join(root, "README.md"), "utf8");
const run = promisify(execFile);

/** The fenced code block of `language` that follows `heading`. */
function block(heading: string, language: string): string {
  const start = readme.indexOf(heading);
  assert.ok(start >= 0, `README has no "${heading}"`);
  const fence = "`".repeat(3);
  const match = new RegExp(`${fence}${language}\\n([\\s\\S]*?)${fence}`).exec(readme.slice(start));
  assert.ok(match?.[1], `no ${language} block after "${heading}"`);
  return match[1];
}

let server: Awaited<ReturnType<typeof startTestServer>>;
// Each example starts from an empty database.
beforeEach(async () => {
  server = await startTestServer();
});
afterEach(() => server.stop());

describe("README", () => {
  it("typed client example runs", async () => {
    const dir = join(root, "packages/server/.readme-test");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "example.ts");
    writeFileSync(
      file,
      block("### With the typed client", "ts").replaceAll("http://127.0.0.1:9090", server.url),
    );
    try {
      const { stdout } = await run(process.execPath, ["--conditions=source", file]);
      assert.match(stdout, /username: 'ada'/);
      assert.match(stdout, /email: 'ada@example\.com'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("buf curl and curl examples run", async () => {
    const commands = block("### From the command line", "sh")
      .replaceAll("\\\n", " ")
      .trim()
      .split("\n");
    assert.equal(commands.length, 2);
    const buf = join(root, "node_modules/.bin/buf");
    const outputs: string[] = [];
    for (const command of commands) {
      const line = command
        .replace("./dev pnpm exec buf", buf)
        .replace("http://127.0.0.1:9090", server.url);
      outputs.push((await run("bash", ["-c", line], { cwd: root })).stdout);
    }
    const created = JSON.parse(outputs[0] as string) as { user: { userId: string } };
    assert.equal(created.user.userId, "1");
    assert.equal(
      (JSON.parse(outputs[1] as string) as { user: { username: string } }).user.username,
      "ada",
    );
    const curl = block("Connect's JSON form is plain HTTP", "sh")
      .replaceAll("\\\n", " ")
      .replace("http://127.0.0.1:9090", server.url);
    const viaCurl = JSON.parse((await run("bash", ["-c", curl])).stdout) as {
      user: { email: string };
    };
    assert.equal(viaCurl.user.email, "ada@example.com");
  });
});
