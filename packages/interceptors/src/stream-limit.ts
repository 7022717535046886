import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { whenCallEnds } from "./call-progress.ts";
import type { Next, Request, Response } from "./chain.ts";
import { peerKey, principalKey } from "./context.ts";

export interface StreamLimitOptions {
  /** The most streaming calls one authenticated caller (token subject) may have open. Default 100. */
  perPrincipal?: number;
  /** The most streaming calls anonymous callers may have open from one address. Default 200. */
  perAddress?: number;
}

/** The default limits: far above what one real client holds open, far below what exhausts a server. */
export const streamLimitDefaults = { perPrincipal: 100, perAddress: 200 } as const;

/**
 * Limits the streaming calls (server, client and bidi) open at once: per authenticated principal,
 * and per peer address for anonymous calls (`Health/Watch`). One more → RESOURCE_EXHAUSTED saying
 * how many are open and what the limit is; unary calls are not counted (rate limits cover them).
 * A slot is freed when the call ends in any way: its response stream ends or fails, the client
 * cancels or its deadline passes, the handler fails before streaming, or the server shuts down.
 *
 * Place it after authentication (it reads `principalKey`), and after authorization so that
 * refused calls never hold a slot.
 */
export function createStreamLimitInterceptor(options: StreamLimitOptions = {}): Interceptor {
  const perPrincipal = options.perPrincipal ?? streamLimitDefaults.perPrincipal;
  const perAddress = options.perAddress ?? streamLimitDefaults.perAddress;
  const open = new Map<string, number>();

  return (next) => (req) => (req.method.methodKind === "unary" ? next(req) : limited(next, req));

  async function limited(next: Next, req: Request): Promise<Response> {
    const principal = req.contextValues.get(principalKey);
    const [key, limit, who] =
      principal === undefined
        ? [`address ${req.contextValues.get(peerKey)}`, perAddress, "from this address"]
        : [`principal ${principal.subject}`, perPrincipal, "for this caller"];
    const count = open.get(key) ?? 0;
    if (count >= limit) {
      throw new ConnectError(
        `too many open streams ${who}: ${count} of at most ${limit}; close one before opening another`,
        Code.ResourceExhausted,
      );
    }
    open.set(key, count + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const left = (open.get(key) ?? 1) - 1;
      if (left === 0) open.delete(key);
      else open.set(key, left);
    };
    // The call ends by cancellation, deadline or shutdown, even if its response stream is never
    // read to its end.
    whenCallEnds(req, release);
    try {
      const res = await next(req);
      if (!res.stream) {
        release();
        return res;
      }
      return { ...res, message: releasing(res.message, release) };
    } catch (err) {
      release();
      throw err;
    }
  }
}

/**
 * The response stream, calling `release` once it is done, fails or is closed early. Not an async
 * generator: one closed before it started would never run its `finally`.
 */
function releasing<T>(messages: AsyncIterable<T>, release: () => void): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const it = messages[Symbol.asyncIterator]();
      return {
        async next() {
          try {
            const result = await it.next();
            if (result.done) release();
            return result;
          } catch (err) {
            release();
            throw err;
          }
        },
        async return(value?: unknown) {
          release();
          return (await it.return?.(value)) ?? { done: true, value: undefined };
        },
        async throw(err?: unknown) {
          release();
          if (it.throw === undefined) throw err;
          return it.throw(err);
        },
      };
    },
  };
}
