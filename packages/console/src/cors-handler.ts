import { asResponse, type HttpHandler } from "./http-handler.ts";

export interface CorsOptions {
  /**
   * Origins (`scheme://host[:port]`) whose pages may call the services, for example
   * `https://app.example.com`. Every other origin is refused by the browser. Empty: none.
   */
  allowedOrigins: readonly string[];
  /**
   * Request headers allowed besides those of Connect, gRPC-Web, `authorization`, `x-api-key` and
   * `x-request-id`.
   */
  allowedHeaders?: readonly string[];
  /** Response headers exposed besides those of Connect and gRPC-Web, `x-request-id` and `retry-after`. */
  exposedHeaders?: readonly string[];
  /** How long a browser may reuse a preflight answer, in seconds. Default 7200 (Chromium's cap). */
  maxAgeSeconds?: number;
}

// The lists of connect's `cors` constants (@connectrpc/connect), spelled out so that the server
// needs no Connect runtime here; cors-handler.test.ts checks they still contain every entry.
const connectAllowedMethods = ["POST", "GET"];
const connectAllowedHeaders = [
  "Content-Type",
  "Connect-Protocol-Version",
  "Connect-Timeout-Ms",
  "Connect-Content-Encoding",
  "Connect-Accept-Encoding",
  "Content-Encoding",
  "Accept-Encoding",
  "Grpc-Message-Type",
  "X-Grpc-Web",
  "X-User-Agent",
  "Grpc-Timeout",
];
const connectExposedHeaders = [
  "Grpc-Status",
  "Grpc-Message",
  "Grpc-Status-Details-Bin",
  "Content-Encoding",
  "Connect-Content-Encoding",
];

/** What the methods, headers and origins of a CORS handler are; exported for its tests. */
export const corsDefaults = {
  allowedMethods: connectAllowedMethods,
  // keel's own: the bearer token, an API key, and a request id the caller may choose.
  allowedHeaders: [...connectAllowedHeaders, "Authorization", "X-Api-Key", "X-Request-Id"],
  // The request id of every answer, and when to retry after RESOURCE_EXHAUSTED.
  exposedHeaders: [...connectExposedHeaders, "X-Request-Id", "Retry-After"],
} as const;

/**
 * Cross-origin resource sharing for Connect and gRPC-Web, so that a web app on another origin can
 * call the services from a browser.
 *
 * A request from an allowed origin gets `Access-Control-Allow-Origin: <that origin>` (never `*`)
 * and the response headers a client reads (grpc-status, grpc-message, x-request-id, …) exposed.
 * A preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered here: 204 with the
 * allowed methods and headers for an allowed origin, 403 without any CORS header for another;
 * the handler then returns true and the server must not handle the request further. Every other
 * request returns false, to go on to the services. No credentials (cookies) are allowed: callers
 * authenticate with the `authorization` header, or `x-api-key`.
 *
 * Throws a TypeError when an allowed origin is not an origin (a path, a `*`, not a URL).
 */
export function createCorsHandler(options: CorsOptions): HttpHandler {
  const origins = new Set(options.allowedOrigins.map(normalizeOrigin));
  const allowMethods = corsDefaults.allowedMethods.join(", ");
  const allowHeaders = [...corsDefaults.allowedHeaders, ...(options.allowedHeaders ?? [])];
  const exposeHeaders = [...corsDefaults.exposedHeaders, ...(options.exposedHeaders ?? [])];
  const maxAge = String(options.maxAgeSeconds ?? 7200);

  return (req, res) => {
    const origin = req.headers.origin;
    if (origin === undefined) return false;
    const response = asResponse(res);
    const allowed = origins.has(origin);
    const preflight =
      req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
    // Answers differ by origin, so caches must keep them apart.
    response.setHeader(
      "Vary",
      preflight
        ? "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
        : "Origin",
    );
    if (!preflight) {
      if (allowed) {
        response.setHeader("Access-Control-Allow-Origin", origin);
        response.setHeader("Access-Control-Expose-Headers", exposeHeaders.join(", "));
      }
      return false;
    }
    if (!allowed) {
      response.statusCode = 403;
      response.setHeader("Content-Type", "text/plain; charset=utf-8");
      response.end(`origin ${origin} is not allowed: add it to cors.allowedOrigins\n`);
      return true;
    }
    response.statusCode = 204;
    response.setHeader("Access-Control-Allow-Origin", origin);
    response.setHeader("Access-Control-Allow-Methods", allowMethods);
    response.setHeader("Access-Control-Allow-Headers", allowHeaders.join(", "));
    response.setHeader("Access-Control-Max-Age", maxAge);
    response.end();
    return true;
  };
}

/** `https://App.example.com:443/` → `https://app.example.com`, as browsers send it. */
function normalizeOrigin(value: string): string {
  const url = URL.parse(value);
  const bare =
    url !== null &&
    url.origin !== "null" &&
    url.pathname === "/" &&
    url.search === "" &&
    url.hash === "" &&
    url.username === "";
  if (!bare) {
    throw new TypeError(
      `CORS: "${value}" is not an origin; write scheme://host[:port] with nothing after it, like https://app.example.com`,
    );
  }
  return url.origin;
}
