import type { Interceptor } from "@connectrpc/connect";

/** The rest of an interceptor chain, as an interceptor is given it. */
export type Next = Parameters<Interceptor>[0];
/** A call's request as it goes down the chain (unary or streaming). */
export type Request = Parameters<Next>[0];
/** A call's response as it comes back up the chain. */
export type Response = Awaited<ReturnType<Next>>;

/** `next(req)`, a synchronous throw as a rejection (the `.then` of a caller then sees it). */
export function settled(next: Next, req: Request): Promise<Response> {
  try {
    return next(req);
  } catch (err) {
    return Promise.reject(err);
  }
}
