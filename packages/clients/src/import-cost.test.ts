import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * The npm packages a fresh process has loaded modules of after `script` (an ES module) ran in
 * this package's folder, where `@keel/clients` resolves to this package.
 */
async function packagesLoadedBy(script: string): Promise<string[]> {
  const program = `
import { registerHooks } from "node:module";
const loaded = new Set();
registerHooks({
  load(url, context, next) {
    const name = /node_modules\\/((?:@[^/]+\\/)?[^/.][^/]*)\\/(?!.*node_modules\\/)/.exec(url)?.[1];
    if (name !== undefined) loaded.add(name);
    return next(url, context);
  },
});
${script}
console.log(JSON.stringify([...loaded].sort()));
`;
  const { stdout } = await run(
    process.execPath,
    ["--conditions=source", "--input-type=module", "--eval", program],
    { cwd: fileURLToPath(new URL("..", import.meta.url)) },
  );
  return JSON.parse(stdout) as string[];
}

const heavy = /^(prom-client|@opentelemetry\/(?!api$).*)$/;

describe("importing @keel/clients", () => {
  it("loads neither prom-client nor the OpenTelemetry SDK and exporters for a plain client", async () => {
    const loaded = await packagesLoadedBy(`
const { createUserClient, createOrderClient } = await import("@keel/clients");
createUserClient({ endpoints: ["http://127.0.0.1:1", "http://127.0.0.1:2"], retry: {}, token: "t" });
createOrderClient({ baseUrl: "http://127.0.0.1:1", requestId: true });
`);
    assert.ok(loaded.includes("@connectrpc/connect-node"), loaded.join(", "));
    assert.deepEqual(
      loaded.filter((name) => heavy.test(name) || name === "@opentelemetry/api"),
      [],
    );
  });

  it("loads them once a client asks for tracing", async () => {
    const loaded = await packagesLoadedBy(`
const { createUserClient } = await import("@keel/clients");
const users = createUserClient({ baseUrl: "http://127.0.0.1:1", tracing: true });
await users.getUser({ userId: 1n }, { timeoutMs: 100 }).catch(() => {});
`);
    assert.ok(loaded.includes("@opentelemetry/sdk-trace"), loaded.join(", "));
  });
});
