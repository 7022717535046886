import type { Interceptor } from "@connectrpc/connect";

/** A bearer token, or a function that returns the current one (for tokens that get refreshed). */
export type TokenSource = string | (() => string | Promise<string>);

/**
 * Sends `authorization: Bearer <token>` with every call that does not set its own authorization
 * header. A function source is asked once per call, so a refreshed token is picked up.
 */
export function createBearerTokenInterceptor(source: TokenSource): Interceptor {
  const get = typeof source === "string" ? () => source : source;
  return (next) => async (req) => {
    if (!req.header.has("authorization")) {
      const token = await get();
      if (token !== "") req.header.set("authorization", `Bearer ${token}`);
    }
    return next(req);
  };
}
