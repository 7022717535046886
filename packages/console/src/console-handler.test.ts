import assert from "node:assert/strict";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type ConsoleHandlerOptions, createConsoleHandler } from "./console-handler.ts";

let assetsDir = "";
const servers: http.Server[] = [];
before(async () => {
  assetsDir = await mkdtemp(join(tmpdir(), "console-assets-"));
  await writeFile(
    join(assetsDir, "index.html"),
    '<script type="module" src="%BASE_PATH%/console.js"></script>',
  );
  await writeFile(join(assetsDir, "console.js"), "console.log(1);");
  await writeFile(join(assetsDir, "console.css"), "body{}");
});
after(async () => {
  for (const server of servers) server.close();
  await rm(assetsDir, { recursive: true, force: true });
});

/** A real server with the console first and a "next handler" that answers 418. */
async function serve(options: Partial<ConsoleHandlerOptions> = {}): Promise<string> {
  const handler = createConsoleHandler({ enabled: true, assetsDir, ...options });
  const server = http.createServer((req, res) => {
    if (handler(req, res)) return;
    res.writeHead(418);
    res.end("next");
  });
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("createConsoleHandler", () => {
  it("serves the page at /console and /console/, pointing at its base path", async () => {
    const base = await serve();
    for (const path of ["/console", "/console/", "/console?x=1"]) {
      const res = await fetch(`${base}${path}`);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
      assert.equal(await res.text(), '<script type="module" src="/console/console.js"></script>');
    }
  });

  it("sends a content security policy allowing only its own origin, and revalidation headers", async () => {
    const base = await serve();
    const res = await fetch(`${base}/console`);
    const csp = res.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe|\*/);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    assert.equal(res.headers.get("cache-control"), "no-cache");
    const etag = res.headers.get("etag");
    assert.ok(etag);
    const again = await fetch(`${base}/console`, { headers: { "if-none-match": etag } });
    assert.equal(again.status, 304);
    assert.equal(await again.text(), "");
  });

  it("serves the script and the styles with their types", async () => {
    const base = await serve();
    const js = await fetch(`${base}/console/console.js`);
    assert.equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.equal(await js.text(), "console.log(1);");
    const css = await fetch(`${base}/console/console.css`);
    assert.equal(css.headers.get("content-type"), "text/css; charset=utf-8");
    const head = await fetch(`${base}/console/console.css`, { method: "HEAD" });
    assert.equal(head.headers.get("content-length"), "6");
  });

  it("answers 404 for other files, 405 for other methods, and leaves other paths alone", async () => {
    const base = await serve();
    // Sent as written (fetch would resolve ".."): only the console's own files are served.
    for (const path of ["/console/index.ts", "/console/../package.json", "/console/%2e%2e/x"]) {
      const { hostname, port } = new URL(base);
      const req = http.get({ hostname, port, path });
      const [res] = (await once(req, "response")) as [http.IncomingMessage];
      res.resume();
      assert.equal(res.statusCode, 404, path);
    }
    const post = await fetch(`${base}/console`, { method: "POST", body: "{}" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    for (const path of ["/consoles", "/", "/user.v1.UserService/GetUser"]) {
      assert.equal((await fetch(`${base}${path}`)).status, 418, path);
    }
  });

  it("answers nothing when disabled", async () => {
    const base = await serve({ enabled: false });
    assert.equal((await fetch(`${base}/console`)).status, 418);
  });

  it("lives under another base path when told", async () => {
    const base = await serve({ basePath: "/tools/api-console" });
    const res = await fetch(`${base}/tools/api-console`);
    assert.match(await res.text(), /src="\/tools\/api-console\/console\.js"/);
    assert.equal((await fetch(`${base}/console`)).status, 418);
    assert.throws(() => createConsoleHandler({ enabled: true, basePath: "/console/" }), /basePath/);
    assert.throws(() => createConsoleHandler({ enabled: true, basePath: "console" }), /basePath/);
  });

  it("says so when the console has not been built", async () => {
    const base = await serve({ assetsDir: join(assetsDir, "missing") });
    const res = await fetch(`${base}/console`);
    assert.equal(res.status, 503);
    assert.match(await res.text(), /not built: run `pnpm --filter @keel\/console build`/);
  });

  it("finds the built page in this package's dist by default", async () => {
    const dist = fileURLToPath(new URL("../dist/", import.meta.url));
    assert.ok(existsSync(join(dist, "console.js")), "build the package first: pnpm build");
    const handler = createConsoleHandler({ enabled: true });
    const server = http.createServer((req, res) => handler(req, res));
    servers.push(server);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const page = await (await fetch(`${base}/console`)).text();
    assert.match(page, /<script type="module" src="\/console\/console\.js"><\/script>/);
    assert.equal((await fetch(`${base}/console/console.js`)).status, 200);
    assert.equal((await fetch(`${base}/console/console.css`)).status, 200);
  });
});
