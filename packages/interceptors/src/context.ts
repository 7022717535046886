import { createContextKey, type HandlerContext } from "@connectrpc/connect";

/** Who is calling, as established by the authentication interceptor. */
export interface Principal {
  /** The token's subject. */
  subject: string;
  /** The subject as a user id, when it is one. */
  userId: bigint | undefined;
  roles: readonly string[];
  /** The token's `jti`, when it has one. */
  tokenId: string | undefined;
  /** The token's `iss`, when it has one: who issued it. */
  issuer?: string | undefined;
  /** The token's `sid`: the login session it belongs to, when its issuer says. */
  sessionId?: string | undefined;
}

/** The request id of the call: the caller's `x-request-id` if valid, otherwise a new one. */
export const requestIdKey = createContextKey<string>("", { description: "request id" });

/** The authenticated caller; undefined for anonymous calls (public methods). */
export const principalKey = createContextKey<Principal | undefined>(undefined, {
  description: "principal",
});

/**
 * The client's address, set by the server: the connection's remote address, or behind trusted
 * proxies the client they name (`createClientAddressResolver`). Rate limits, audit and logs use it.
 */
export const peerKey = createContextKey<string>("", { description: "peer address" });

/**
 * The absolute deadline (milliseconds since the epoch) of the call when the client set none and a
 * default applies, set by the deadline interceptor (or by a transport that armed it on the call's
 * signal itself). connect's own `timeoutMs()` does not know it; use `remainingTimeMs`.
 */
export const deadlineKey = createContextKey<number | undefined>(undefined, {
  description: "default deadline",
});

/**
 * The time left before the call's deadline, whether the client set it or the server's default
 * applies; undefined when there is none. Pass it on to outgoing calls.
 */
export function remainingTimeMs(
  ctx: Pick<HandlerContext, "timeoutMs" | "values">,
): number | undefined {
  const own = ctx.timeoutMs();
  const deadline = ctx.values.get(deadlineKey);
  if (deadline === undefined) return own;
  const fromDefault = Math.max(0, deadline - Date.now());
  return own === undefined ? fromDefault : Math.min(own, fromDefault);
}
