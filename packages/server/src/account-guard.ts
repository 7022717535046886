import { Code, ConnectError } from "@connectrpc/connect";
import { UserStatus } from "@keel/gen/user/v1/user_pb";
import type { Principal } from "@keel/interceptors";
import type { UserRecord } from "@keel/store";
import { createFreshCache } from "./fresh-cache.ts";

export interface AccountGuardOptions {
  /** Reads a user's current record; undefined when there is no such user. */
  user: (userId: bigint) => Promise<UserRecord | undefined>;
  /** Whether a login (refresh token family) is still active: not revoked, not expired. */
  session: (sessionId: string) => Promise<boolean>;
  /** The `iss` of this server's own tokens: only those name users and logins of this store. */
  issuer: string;
  /**
   * How long a user's status, or a login's, is trusted before it is read again, in ms: the
   * longest a suspension or revocation made on another instance or cluster worker takes to reach
   * this one. Default 2000.
   */
  maxAgeMs?: number;
  /** The most users (and, apart, logins) remembered; the least recently read go first. Default 100000. */
  maxEntries?: number;
  /** Monotonic clock in ms, for tests. Default `performance.now`. */
  now?: () => number;
}

/** Refuses the tokens of suspended and removed accounts and of revoked logins; see `createAccountGuard`. */
export interface AccountGuard {
  /** For the authentication interceptor's `checkPrincipal`. */
  check(principal: Principal): void | Promise<void>;
  /** Reads the user's status again at their next call: it changed on this instance. */
  forget(userId: bigint): void;
  /** Reads the login's state again at its next call: it was revoked on this instance. */
  forgetSession(sessionId: string): void;
}

/**
 * Refuses calls made with this server's access tokens once their user is suspended, or gone, or
 * their login (the `sid` claim: the refresh token family) revoked — because a refresh token was
 * reused — whatever the token's remaining lifetime. What it reads is kept in memory for
 * `maxAgeMs`, so a call costs two map lookups; concurrent calls share one read. Every instance and
 * worker reads the same store, so a change made anywhere reaches every one of them within
 * `maxAgeMs`; the instance that made it is told at once (`forget`, `forgetSession`). Tokens of
 * other issuers (a JWKS) name no user or login here and are not checked.
 */
export function createAccountGuard(options: AccountGuardOptions): AccountGuard {
  const settings = {
    maxAgeMs: options.maxAgeMs ?? 2000,
    maxEntries: options.maxEntries ?? 100_000,
    now: options.now ?? (() => performance.now()),
  };
  const unavailable = "cannot check the account's status right now; retry shortly";
  const users = createFreshCache(options.user, (user) => user?.status, {
    ...settings,
    unavailable,
  });
  const sessions = createFreshCache(options.session, (active) => active, {
    ...settings,
    unavailable,
  });

  const checkSession = (principal: Principal): void | Promise<void> => {
    const sessionId = principal.sessionId;
    if (sessionId === undefined) return;
    const active = sessions.get(sessionId);
    if (active === true) return;
    if (active === false) throw loginRevoked();
    return active.then((fresh) => {
      if (!fresh) throw loginRevoked();
    });
  };

  return {
    check(principal) {
      const userId = principal.userId;
      if (userId === undefined || principal.issuer !== options.issuer) return;
      const status = users.get(userId);
      if (status instanceof Promise) {
        return status.then((fresh) => {
          userVerdict(fresh, principal);
          return checkSession(principal);
        });
      }
      userVerdict(status, principal);
      return checkSession(principal);
    },
    forget: (userId) => users.forget(userId),
    forgetSession: (sessionId) => sessions.forget(sessionId),
  };
}

function userVerdict(status: UserStatus | undefined, principal: Principal): void {
  // A login's token names an account that must exist. A token minted by an operator with the
  // `token` command (no session) may name a user id that has none, for development or to bootstrap.
  if (status === undefined && principal.sessionId !== undefined) {
    throw new ConnectError(
      `the account of this token (user ${principal.userId}) no longer exists; log in again`,
      Code.Unauthenticated,
    );
  }
  if (status === UserStatus.SUSPENDED) throw accountSuspended();
}

function loginRevoked(): ConnectError {
  return new ConnectError(
    "this login was revoked (its refresh token was used twice, or it expired); log in again",
    Code.Unauthenticated,
  );
}

/** What a suspended user is told, by Login, RefreshToken and every call with their tokens. */
export function accountSuspended(): ConnectError {
  return new ConnectError(
    "this account is suspended; contact an administrator",
    Code.PermissionDenied,
  );
}
