import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { asResponse, type HandlerResponse, type HttpHandler, pathOf } from "./http-handler.ts";

export interface ConsoleHandlerOptions {
  /** Serve the console. When false, the handler answers nothing and always returns false. */
  enabled: boolean;
  /** Where the console lives: `/console` serves the page, `/console/console.js` its script. Default "/console". */
  basePath?: string;
  /** The built page (index.html, console.js, console.css). Default: this package's dist directory. */
  assetsDir?: string;
}

// Only this origin may provide anything to the page, and nobody may frame it.
const contentSecurityPolicy = [
  "default-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join("; ");

const assetTypes: Record<string, string> = {
  "index.html": "text/html; charset=utf-8",
  "console.js": "text/javascript; charset=utf-8",
  "console.js.map": "application/json; charset=utf-8",
  "console.css": "text/css; charset=utf-8",
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/**
 * Serves the API console: `GET <basePath>` (and `<basePath>/`) is the page, `<basePath>/console.js`
 * and `<basePath>/console.css` its script and styles, read from the built dist once, on first use.
 * Anything else under `<basePath>/` is 404, other methods than GET and HEAD 405; paths outside
 * `<basePath>` return false, for the server's next handler.
 *
 * Every answer carries a content security policy that allows only this origin. Assets are sent
 * with an ETag and `cache-control: no-cache`, so a browser revalidates (304) and never keeps an old
 * console after an upgrade. When dist has not been built, the page is a 503 saying so.
 */
export function createConsoleHandler(options: ConsoleHandlerOptions): HttpHandler {
  if (!options.enabled) return () => false;
  const basePath = options.basePath ?? "/console";
  if (!/^(\/[A-Za-z0-9._~-]+)+$/.test(basePath)) {
    throw new TypeError(
      `console: basePath "${basePath}" must look like /console (no trailing slash)`,
    );
  }
  const assetsDir = options.assetsDir ?? fileURLToPath(new URL("../dist/", import.meta.url));
  const assets = new Map<string, Asset>();
  const load = (name: string): Asset => {
    let asset = assets.get(name);
    if (asset === undefined) {
      let body = readFileSync(`${assetsDir}/${name}`);
      if (name === "index.html")
        body = Buffer.from(body.toString().replaceAll("%BASE_PATH%", basePath));
      const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`;
      asset = { body, type: assetTypes[name] ?? "application/octet-stream", etag };
      assets.set(name, asset);
    }
    return asset;
  };

  return (req, res) => {
    const path = pathOf(req);
    if (path !== basePath && !path.startsWith(`${basePath}/`)) return false;
    const response = asResponse(res);
    response.setHeader("Content-Security-Policy", contentSecurityPolicy);
    response.setHeader("X-Content-Type-Options", "nosniff");
    response.setHeader("Referrer-Policy", "no-referrer");
    const rest = path.slice(basePath.length);
    const name = rest === "" || rest === "/" ? "index.html" : rest.slice(1);
    if (assetTypes[name] === undefined) {
      text(response, 404, `no such file in the console: ${path}\n`);
      return true;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      response.setHeader("Allow", "GET, HEAD");
      text(response, 405, `the console answers GET and HEAD, not ${req.method}\n`);
      return true;
    }
    let asset: Asset;
    try {
      asset = load(name);
    } catch {
      text(response, 503, "the console is not built: run `pnpm --filter @keel/console build`\n");
      return true;
    }
    response.setHeader("Cache-Control", "no-cache");
    response.setHeader("ETag", asset.etag);
    if (req.headers["if-none-match"] === asset.etag) {
      response.statusCode = 304;
      response.end();
      return true;
    }
    response.statusCode = 200;
    response.setHeader("Content-Type", asset.type);
    response.setHeader("Content-Length", asset.body.length);
    response.end(req.method === "HEAD" ? undefined : asset.body);
    return true;
  };
}

function text(response: HandlerResponse, status: number, body: string): void {
  response.statusCode = status;
  response.setHeader("Content-Type", "text/plain; charset=utf-8");
  response.setHeader("Cache-Control", "no-store");
  response.end(body);
}
