import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampMs } from "@bufbuild/protobuf/wkt";

/** The part of a Login or RefreshToken response a token provider needs. */
export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  accessTokenExpiresAt?: Timestamp | undefined;
}

export interface TokenProviderOptions {
  /** Gets a fresh pair from credentials, for example `() => users.login({ username, password })`. */
  login: () => Promise<TokenPair>;
  /** Exchanges a refresh token, for example `(refreshToken) => users.refreshToken({ refreshToken })`. */
  refresh: (refreshToken: string) => Promise<TokenPair>;
  /** Renew this long before the access token expires, in ms. Default 60000. */
  refreshBeforeMs?: number;
  /** The clock, for tests. Default `Date.now`. */
  now?: () => number;
}

/**
 * A `token` source for keel's clients that keeps an access token valid: it logs in on first use,
 * refreshes `refreshBeforeMs` before expiry, and logs in again if the refresh token is refused.
 * Concurrent calls share one renewal. Use a client without this provider for `login` and `refresh`.
 *
 * ```ts
 * const auth = createUserClient({ baseUrl });
 * const token = createTokenProvider({
 *   login: () => auth.login({ username, password }),
 *   refresh: (refreshToken) => auth.refreshToken({ refreshToken }),
 * });
 * const users = createUserClient({ baseUrl, token });
 * ```
 */
export function createTokenProvider(options: TokenProviderOptions): () => Promise<string> {
  const now = options.now ?? Date.now;
  const margin = options.refreshBeforeMs ?? 60_000;
  let current: TokenPair | undefined;
  let renewing: Promise<TokenPair> | undefined;

  const renew = async (): Promise<TokenPair> => {
    if (current !== undefined) {
      try {
        return await options.refresh(current.refreshToken);
      } catch {
        // Refused (expired, revoked or reused) or unreachable: credentials are the way back in.
      }
    }
    return options.login();
  };
  const fresh = (pair: TokenPair) =>
    pair.accessTokenExpiresAt === undefined ||
    timestampMs(pair.accessTokenExpiresAt) - margin > now();

  return async () => {
    if (current !== undefined && fresh(current)) return current.accessToken;
    renewing ??= renew().finally(() => {
      renewing = undefined;
    });
    current = await renewing;
    return current.accessToken;
  };
}
