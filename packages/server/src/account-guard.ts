import { Code, ConnectError } from "@connectrpc/connect";
import { UserStatus } from "@keel/gen/user/v1/user_pb";
import type { Principal } from "@keel/interceptors";
import type { UserRecord } from "@keel/store";

export interface AccountGuardOptions {
  /** Reads a user's current record; undefined when there is no such user. */
  lookup: (userId: bigint) => Promise<UserRecord | undefined>;
  /** The `iss` of this server's own tokens: only those name users of this store. */
  issuer: string;
  /**
   * How long a user's status is trusted before it is read again, in ms: the longest a suspension
   * made on another instance or cluster worker takes to reach this one. Default 2000.
   */
  maxAgeMs?: number;
  /** The most users remembered; the least recently read are forgotten first. Default 100000. */
  maxEntries?: number;
  /** Monotonic clock in ms, for tests. Default `performance.now`. */
  now?: () => number;
}

/** Refuses the tokens of suspended and removed accounts; see `createAccountGuard`. */
export interface AccountGuard {
  /** For the authentication interceptor's `checkPrincipal`. */
  check(principal: Principal): void | Promise<void>;
  /** Reads the user's status again at their next call: it changed on this instance. */
  forget(userId: bigint): void;
}

interface Entry {
  status: UserStatus | undefined;
  readAt: number;
}

/**
 * Refuses calls made with this server's access tokens once their user is suspended, or gone (for
 * tokens from Login and RefreshToken), whatever the token's remaining lifetime. Each user's status is read from the store at most once
 * per `maxAgeMs` and kept in memory, so a call costs a map lookup; concurrent calls of one user
 * share one read. Every instance and worker reads the same store, so a suspension made anywhere
 * reaches every one of them within `maxAgeMs`; the instance that made it is told at once
 * (`forget`). Tokens of other issuers (a JWKS) name no user here and are not checked.
 */
export function createAccountGuard(options: AccountGuardOptions): AccountGuard {
  const maxAgeMs = options.maxAgeMs ?? 2000;
  const maxEntries = options.maxEntries ?? 100_000;
  const now = options.now ?? (() => performance.now());
  const entries = new Map<bigint, Entry>();
  const reading = new Map<bigint, Promise<Entry>>();

  const read = (userId: bigint): Promise<Entry> => {
    let pending = reading.get(userId);
    if (pending === undefined) {
      const startedAt = now();
      pending = options.lookup(userId).then(
        (user) => {
          reading.delete(userId);
          const entry = { status: user?.status, readAt: startedAt };
          // Re-inserted, so that the Map's order is the order of reads: the first key is the oldest.
          entries.delete(userId);
          if (entries.size >= maxEntries) {
            const oldest = entries.keys().next().value;
            if (oldest !== undefined) entries.delete(oldest);
          }
          entries.set(userId, entry);
          return entry;
        },
        (err: unknown) => {
          reading.delete(userId);
          throw new ConnectError(
            "cannot check the account's status right now; retry shortly",
            Code.Unavailable,
            undefined,
            undefined,
            err,
          );
        },
      );
      reading.set(userId, pending);
    }
    return pending;
  };

  return {
    check(principal) {
      const userId = principal.userId;
      if (userId === undefined || principal.issuer !== options.issuer) return;
      const entry = entries.get(userId);
      if (entry !== undefined && now() - entry.readAt < maxAgeMs) return verdict(entry, principal);
      return read(userId).then((fresh) => verdict(fresh, principal));
    },
    forget(userId) {
      entries.delete(userId);
    },
  };
}

function verdict(entry: Entry, principal: Principal): void {
  // A login's token names an account that must exist. A token minted by an operator with the
  // `token` command (no session) may name a user id that has none, for development or to bootstrap.
  if (entry.status === undefined && principal.sessionId !== undefined) {
    throw new ConnectError(
      `the account of this token (user ${principal.userId}) no longer exists; log in again`,
      Code.Unauthenticated,
    );
  }
  if (entry.status === UserStatus.SUSPENDED) throw accountSuspended();
}

/** What a suspended user is told, by Login, RefreshToken and every call with their tokens. */
export function accountSuspended(): ConnectError {
  return new ConnectError(
    "this account is suspended; contact an administrator",
    Code.PermissionDenied,
  );
}
