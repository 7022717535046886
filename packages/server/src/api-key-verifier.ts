import { Code, ConnectError } from "@connectrpc/connect";
import type { Principal } from "@keel/interceptors";
import type { ApiKeyRecord, ApiKeyRepository } from "@keel/store";
import { apiKeyIdOf, hashApiKey, sameHash } from "./api-keys.ts";
import { createFreshCache } from "./fresh-cache.ts";

export interface ApiKeyVerifierOptions {
  keys: Pick<ApiKeyRepository, "get" | "touch">;
  /** The HMAC key the stored hashes were made with. */
  secret: Uint8Array;
  /**
   * How long a key's record is trusted before it is read again, in ms: the longest a revocation
   * made on another instance takes to reach this one. Default 2000.
   */
  maxAgeMs?: number;
  /** A key's last use is written at most this often, in ms. Default 60000. */
  touchEveryMs?: number;
  /** The most keys remembered. Default 10000. */
  maxEntries?: number;
  /** Told when writing a last use fails; the call goes on. Default: nothing. */
  onTouchError?: (err: unknown) => void;
  /** Monotonic clock in ms, for tests. Default `performance.now`. */
  now?: () => number;
}

/** Checks API keys; see `createApiKeyVerifier`. */
export interface ApiKeyVerifier {
  /**
   * The caller a key names: `apikey:<id>` with the key's roles. Synchronous while the key's
   * record is fresh in memory; refuses a malformed, unknown, revoked or expired key with
   * UNAUTHENTICATED.
   */
  authenticate(key: string): Principal | Promise<Principal>;
  /** Reads the key's record again at its next use: it was revoked on this instance. */
  forget(id: string): void;
}

interface Known {
  record: ApiKeyRecord;
  principal: Principal;
}

/**
 * Checks an API key against its stored HMAC: one keyed hash (microseconds) and a map lookup per
 * call. A key's record is kept for `maxAgeMs` (concurrent first calls share one read), so a key
 * revoked on any instance is refused everywhere within that time, and at once where it was
 * revoked (`forget`). The key's last use is written in the background at most once per
 * `touchEveryMs`.
 */
export function createApiKeyVerifier(options: ApiKeyVerifierOptions): ApiKeyVerifier {
  const now = options.now ?? (() => performance.now());
  const touchEveryMs = options.touchEveryMs ?? 60_000;
  const maxEntries = options.maxEntries ?? 10_000;
  const records = createFreshCache(
    (id: string) => options.keys.get(id),
    (record): Known | null =>
      record === undefined
        ? null
        : {
            record,
            principal: {
              subject: `apikey:${record.id}`,
              userId: undefined,
              roles: record.roles,
              tokenId: record.id,
            },
          },
    {
      maxAgeMs: options.maxAgeMs ?? 2000,
      maxEntries,
      now,
      unavailable: "cannot check the API key right now; retry shortly",
    },
  );
  const touched = new Map<string, number>();

  const verdict = (key: string, known: Known | null): Principal => {
    if (known === null || !sameHash(known.record.hash, hashApiKey(options.secret, key))) {
      throw unauthenticated("unknown API key; ask an administrator for one (CreateApiKey)");
    }
    const { record } = known;
    if (record.revokedAt !== undefined) {
      throw unauthenticated(`API key ${record.id} was revoked; ask an administrator for a new one`);
    }
    if (record.expiresAt !== undefined && record.expiresAt.getTime() <= Date.now()) {
      throw unauthenticated(`API key ${record.id} expired; ask an administrator for a new one`);
    }
    touch(record.id);
    return known.principal;
  };

  const touch = (id: string) => {
    const t = now();
    const last = touched.get(id);
    if (last !== undefined && t - last < touchEveryMs) return;
    if (touched.size >= maxEntries) touched.clear();
    touched.set(id, t);
    options.keys.touch(id, new Date()).catch((err: unknown) => options.onTouchError?.(err));
  };

  return {
    authenticate(key) {
      const id = apiKeyIdOf(options.secret, key);
      if (id === undefined) {
        throw unauthenticated(
          "unknown API key; send the whole key CreateApiKey returned (keel_…) as x-api-key",
        );
      }
      const known = records.get(id);
      return known instanceof Promise
        ? known.then((fresh) => verdict(key, fresh))
        : verdict(key, known);
    },
    forget: (id) => records.forget(id),
  };
}

function unauthenticated(message: string): ConnectError {
  return new ConnectError(message, Code.Unauthenticated);
}
