// The console and CORS in a real browser: Debian's Chromium, driven by playwright-core, against the
// real keel server run as a process. Screenshots of the console land in packages/console/screenshots.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { OrderService } from "@keel/gen/order/v1/order_pb";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { build } from "esbuild";
import type { Browser, Page } from "playwright-core";
import { chromiumSkipReason, launchChromium } from "./testing/chromium.ts";
import type { CrossOriginApp, GetUserCall } from "./testing/cross-origin-app.ts";
import { type KeelServer, startKeelServer } from "./testing/keel-server.ts";
import { type StaticSite, serveStaticSite } from "./testing/static-site.ts";

const screenshots = fileURLToPath(new URL("../screenshots/", import.meta.url));
const dist = fileURLToPath(new URL("../dist/", import.meta.url));
const ada = { username: "ada", email: "ada@example.com", password: "correct horse battery" };

describe("the console in Chromium", { skip: chromiumSkipReason() }, () => {
  let browser: Browser;
  let keel: KeelServer;
  let allowedSite: StaticSite;
  let otherSite: StaticSite;
  let page: Page;
  let userId = "";

  before(async () => {
    browser = await launchChromium();
    assert.ok(existsSync(`${dist}console.js`), "the console is not built: run pnpm build first");
    const app = await bundleCrossOriginApp();
    allowedSite = await serveStaticSite(app);
    otherSite = await serveStaticSite(app);
    // The console is on by default outside production; only the first site may call across origins.
    keel = await startKeelServer({ KEEL_CORS_ALLOWED_ORIGINS: allowedSite.origin });
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    page.setDefaultTimeout(10_000);
    await mkdir(screenshots, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await keel?.stop();
    allowedSite?.close();
    otherSite?.close();
  });

  /** Picks a method in the list, writes the request and presses Call. */
  async function call(method: string, request: object) {
    await page.click(`button[data-method="${method}"]`);
    await page.fill("#request", JSON.stringify(request, null, 2));
    await page.click("#call");
  }

  /** Waits for the call to end and returns what the page shows about it. */
  async function outcome() {
    // While a call runs the status ends with "…"; before the first it is "—". (The console's
    // content security policy forbids eval, so no waitForFunction with a string here.)
    await page.locator("#status").filter({ hasNotText: /…|—/ }).waitFor();
    const text = (id: string) => page.textContent(`#${id}`).then((t) => t ?? "");
    return {
      status: await text("status"),
      elapsed: await text("elapsed"),
      error: await text("error-message"),
      messages: await page.$$eval("#messages pre", (pres) => pres.map((p) => p.textContent ?? "")),
    };
  }

  it("lists every method of both services, with a JSON template for each", async () => {
    const res = await page.goto(`${keel.url}/console`);
    assert.equal(res?.status(), 200, `GET /console: is the console wired into the server?`);
    const listed = await page.$$eval("#methods button", (buttons) =>
      buttons.map((b) => b.getAttribute("data-method")),
    );
    const expected = [UserService, OrderService].flatMap((s) =>
      s.methods.map((m) => `/${s.typeName}/${m.name}`),
    );
    assert.deepEqual(listed, expected);
    await page.click('button[data-method="/user.v1.UserService/CreateUser"]');
    const template = JSON.parse(await page.inputValue("#request"));
    assert.deepEqual(template, { username: "", email: "", tags: [], password: "" });
    assert.equal(await page.getAttribute("#call", "disabled"), null);
  });

  it("creates a user, logs in, calls GetUser and shows the user with the status and the time", async () => {
    await call("/user.v1.UserService/CreateUser", ada);
    const created = await outcome();
    assert.equal(created.status, "OK", created.error);
    userId = JSON.parse(created.messages[0] ?? "{}").user.userId;
    assert.match(userId, /^\d+$/);

    await page.fill("#username", ada.username);
    await page.fill("#password", ada.password);
    await page.click("#login");
    await page.waitForSelector("#session:not([hidden])");
    assert.equal(await page.textContent("#session-text"), `Logged in as ada (user ${userId})`);

    await call("/user.v1.UserService/GetUser", { userId });
    const got = await outcome();
    assert.equal(got.status, "OK", got.error);
    assert.match(got.elapsed, /^\d+(\.\d)? ms$/);
    assert.equal(got.messages.length, 1);
    const { user } = JSON.parse(got.messages[0] ?? "{}");
    assert.equal(user.userId, userId);
    assert.equal(user.username, "ada");
    assert.equal(user.email, "ada@example.com");
    assert.match((await page.textContent("#request-id")) ?? "", /^[0-9a-f-]{36}$/);
    await page.screenshot({ path: `${screenshots}console-get-user.png`, fullPage: true });
  });

  it("shows an error's code and message", async () => {
    await call("/user.v1.UserService/GetUser", { userId: "one" });
    const invalid = await outcome();
    assert.equal(invalid.status, "not sent");
    assert.match(invalid.error, /not a valid user\.v1\.GetUserRequest/);
    // Somebody else's user: ada is no admin.
    await call("/user.v1.UserService/GetUser", { userId: String(Number(userId) + 1) });
    const denied = await outcome();
    assert.equal(denied.status, "PERMISSION_DENIED");
    assert.match(denied.error, /not yours/);
    assert.match(denied.elapsed, /^\d+(\.\d)? ms$/);
    await page.screenshot({ path: `${screenshots}console-error.png`, fullPage: true });
  });

  it("streams activities as they happen, until Stop", async () => {
    await call("/user.v1.UserService/StreamUserActivities", { userId });
    // The history: created, then logged in.
    await page.locator("#messages li").nth(1).waitFor();
    assert.equal(await page.textContent("#status"), "streaming…");
    assert.equal(await page.isVisible("#stop"), true);
    // A login elsewhere is a live activity, which appears while the stream is open.
    await createClient(UserService, createConnectTransport({ baseUrl: keel.url })).login(ada);
    await page.locator("#messages li").nth(2).waitFor();
    const actions = await page.$$eval("#messages pre", (pres) =>
      pres.map((p) => JSON.parse(p.textContent ?? "{}").action),
    );
    assert.deepEqual(actions, ["user.created", "user.login", "user.login"]);
    await page.screenshot({ path: `${screenshots}console-stream.png`, fullPage: true });
    await page.click("#stop");
    const stopped = await outcome();
    assert.equal(stopped.status, "CANCELED");
    assert.equal(stopped.messages.length, 3);
    assert.equal(await page.isVisible("#stop"), false);
  });

  it("lists client-streaming and bidi methods as not callable from a browser", async () => {
    for (const method of ["BatchUpdateUsers", "SyncUserStatus"]) {
      const button = `button[data-method="/user.v1.UserService/${method}"]`;
      assert.match((await page.textContent(button)) ?? "", /not callable from a browser/);
      await page.click(button);
      assert.equal(await page.isDisabled("#call"), true);
      assert.match((await page.textContent("#method-note")) ?? "", /not callable from a browser/);
    }
  });

  it("sends no token once logged out", async () => {
    await page.click("#logout");
    await call("/user.v1.UserService/GetUser", { userId });
    const anonymous = await outcome();
    assert.equal(anonymous.status, "UNAUTHENTICATED");
    assert.match(anonymous.error, /\(log in first\)$/);
  });

  it("lets a page on an allowed origin call the services over Connect and gRPC-Web", async () => {
    const { accessToken } = await createClient(
      UserService,
      createConnectTransport({ baseUrl: keel.url }),
    ).login(ada);
    const other = await browser.newPage();
    try {
      await other.goto(`${allowedSite.origin}/`);
      for (const protocol of ["connect", "grpc-web"] as const) {
        const base = { baseUrl: keel.url, protocol, userId };
        const ok = await getUserFrom(other, { ...base, token: accessToken });
        assert.deepEqual(
          { ...ok, requestId: typeof ok.requestId },
          {
            username: "ada",
            code: "OK",
            message: "",
            requestId: "string",
          },
          protocol,
        );
        // An error's code and message arrive in headers, which CORS must expose to be read.
        const refused = await getUserFrom(other, base);
        assert.equal(refused.code, "Unauthenticated", protocol);
        assert.notEqual(refused.message, "", protocol);
      }
    } finally {
      await other.close();
    }
  });

  it("lets a page on an allowed origin send an API key (x-api-key) past the preflight", async () => {
    const other = await browser.newPage();
    try {
      await other.goto(`${allowedSite.origin}/`);
      // A key this server never made: the call reaching the server, which refuses the key itself,
      // shows the browser's preflight allowed the header.
      const apiKey = `keel_${"0".repeat(16)}_${"a".repeat(43)}`;
      for (const protocol of ["connect", "grpc-web"] as const) {
        const refused = await getUserFrom(other, { baseUrl: keel.url, protocol, userId, apiKey });
        assert.equal(refused.code, "Unauthenticated", `${protocol}: ${refused.message}`);
        assert.match(refused.message, /API key/, protocol);
        assert.equal(typeof refused.requestId, "string", protocol);
      }
    } finally {
      await other.close();
    }
  });

  it("has the browser refuse the same calls from an origin that is not allowed", async () => {
    const other = await browser.newPage();
    try {
      await other.goto(`${otherSite.origin}/`);
      for (const protocol of ["connect", "grpc-web"] as const) {
        const blocked = other.waitForEvent("console", (m) =>
          /blocked by CORS policy/.test(m.text()),
        );
        const result = await getUserFrom(other, { baseUrl: keel.url, protocol, userId });
        assert.equal(result.username, null, protocol);
        assert.match(result.message, /Failed to fetch/, protocol);
        assert.match((await blocked).text(), new RegExp(`from origin '${otherSite.origin}'`));
      }
    } finally {
      await other.close();
    }
  });
});

/** Calls GetUser from the cross-origin page's script. */
async function getUserFrom(page: Page, call: GetUserCall) {
  await page.waitForFunction(() => "keelGetUser" in globalThis);
  return page.evaluate((c) => (globalThis as unknown as CrossOriginApp).keelGetUser(c), call);
}

/** The other origin's page: HTML and its script, bundled from testing/cross-origin-app.ts. */
async function bundleCrossOriginApp(): Promise<Record<string, [string, string]>> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL("testing/cross-origin-app.ts", import.meta.url))],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["es2022"],
    conditions: ["source"],
    write: false,
    logLevel: "warning",
  });
  const script = result.outputFiles[0]?.text ?? "";
  const html =
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Another origin</title>' +
    '<script type="module" src="/app.js"></script></head><body><h1>Another origin</h1></body></html>';
  return {
    "/": ["text/html; charset=utf-8", html],
    "/app.js": ["text/javascript; charset=utf-8", script],
  };
}
