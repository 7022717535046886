import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { type Principal, principalKey } from "./context.ts";
import {
  type AccessPolicy,
  createPolicyResolver,
  type ExtraPolicies,
  isZeroValue,
} from "./policy.ts";
import { tap } from "./streams.ts";

export interface AuthorizationOptions {
  /**
   * Finds who owns an order, for rules with `order_id_field`; undefined when the order does not
   * exist (the call then goes on, and the handler answers NOT_FOUND). Required when a rule uses it.
   */
  orderOwner?: (orderId: bigint, ctx: { signal: AbortSignal }) => Promise<bigint | undefined>;
  /**
   * Answers a caller acting on an order that is not theirs, existing or not, with `notFound`
   * (the handler's own NOT_FOUND for a missing order, message included) before anything else is
   * checked, so that nobody learns which order ids exist by trying them. Callers with one of
   * `exceptRoles`, those who may see every order anyway, are refused with PERMISSION_DENIED as
   * without this option. Default: PERMISSION_DENIED for an existing order, for everyone.
   */
  hideOthersOrders?: {
    notFound: (orderId: bigint) => ConnectError;
    exceptRoles?: readonly string[];
  };
  /**
   * Rules for services that carry no `(policy.v1.method)` option, by service type name or
   * procedure, for example `{ "grpc.health.v1.Health": { public: true } }`. Give the
   * authentication interceptor the same. Default none.
   */
  policies?: ExtraPolicies;
}

/**
 * Enforces each method's access rule, declared with the API as `(policy.v1.method).access`:
 * public, any authenticated caller, callers with a role, or callers acting on their own user or
 * order. Every request message is checked, so a stream cannot switch to another user's data after
 * its first message. A method without a rule is denied to everyone. Violations → PERMISSION_DENIED.
 */
export function createAuthorizationInterceptor(options: AuthorizationOptions = {}): Interceptor {
  const policyOf = createPolicyResolver(options.policies);

  /**
   * Throws when `principal` may not make the call with `message`; a promise only when an order's
   * owner has to be looked up, so that most calls go on without a promise or a microtask.
   */
  const check = (
    policy: AccessPolicy,
    principal: Principal | undefined,
    message: Record<string, unknown>,
    // The call's signal only when it is needed: reading it makes it (an AbortController).
    call: { readonly signal: AbortSignal },
  ): void | Promise<void> => {
    if (policy.restrictedFields.length > 0) checkFields(policy, principal, message);
    if (policy.public) return;
    if (principal === undefined) {
      throw new ConnectError(`${policy.procedure} needs an access token`, Code.Unauthenticated);
    }
    if (!policy.declared) throw denied(`${policy.procedure} declares no access rule`);
    for (const role of principal.roles) if (policy.roles.has(role)) return;
    const owner = policy.owner;
    if (owner !== undefined) {
      if (owner.onlyWhenSet !== undefined && isZeroValue(message[owner.onlyWhenSet])) return;
      if (owner.userIdField !== undefined) {
        const userId = message[owner.userIdField] as bigint;
        if (principal.userId === userId) return;
        throw notYours(policy, `user ${userId}`);
      }
      if (owner.orderIdField !== undefined) {
        if (options.orderOwner === undefined)
          throw new ConnectError(`${policy.procedure} needs orderOwner`, Code.Internal);
        const orderId = message[owner.orderIdField] as bigint;
        return options.orderOwner(orderId, { signal: call.signal }).then((ownerId) => {
          if (principal.userId === ownerId) return;
          const hide = options.hideOthersOrders;
          if (hide !== undefined && !principal.roles.some((r) => hide.exceptRoles?.includes(r))) {
            // Missing or another's, answered here alike: were a missing order let through, a bad
            // request would meet validation for it and NOT_FOUND for an existing one.
            throw hide.notFound(orderId);
          }
          // An order that does not exist: the handler answers NOT_FOUND.
          if (ownerId === undefined) return;
          throw notYours(policy, "an order");
        });
      }
      throw notYours(policy, "an order");
    }
    if (policy.authenticated) return;
    throw denied(`${policy.procedure} is not open to you${needs(policy)}`);
  };

  return (next) => (req) => {
    const policy = policyOf(req.method);
    if (policy.public && policy.restrictedFields.length === 0) return next(req);
    const principal = req.contextValues.get(principalKey);
    if (!req.stream) {
      let pending: void | Promise<void>;
      try {
        pending = check(policy, principal, req.message as unknown as Record<string, unknown>, req);
      } catch (err) {
        return Promise.reject(err);
      }
      return pending === undefined ? next(req) : pending.then(() => next(req));
    }
    return next({
      ...req,
      message: tap(req.message, (m) =>
        check(policy, principal, m as unknown as Record<string, unknown>, req),
      ),
    });
  };
}

function notYours(policy: AccessPolicy, what: string): ConnectError {
  return denied(`${policy.procedure} acts on ${what} that is not yours${needs(policy)}`);
}

function needs(policy: AccessPolicy): string {
  return policy.roles.size === 0 ? "" : `; role ${[...policy.roles].join(" or ")} can`;
}

/** Throws when `message` sets a restricted field that none of the caller's roles may set. */
function checkFields(
  policy: AccessPolicy,
  principal: Principal | undefined,
  message: Record<string, unknown>,
): void {
  for (const rule of policy.restrictedFields) {
    if (!rule.isSet(message)) continue;
    if (principal?.roles.some((role) => rule.roles.has(role))) continue;
    const who = rule.roles.size === 0 ? "nobody" : `only role ${[...rule.roles].join(" or ")}`;
    throw denied(`${who} may set ${rule.path} in ${policy.procedure}`);
  }
}

function denied(message: string): ConnectError {
  return new ConnectError(`permission denied: ${message}`, Code.PermissionDenied);
}
