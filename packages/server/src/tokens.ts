import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  createHs256Keyring,
  createHs256Verifier,
  type Hs256Keyring,
  signHs256,
} from "@keel/interceptors";
import type { RefreshTokenRecord } from "@keel/store";

export interface TokenIssuerOptions {
  /**
   * The HS256 key, at least 32 bytes, or a keyring: its current key signs (tokens carry its
   * `kid`), and every key it holds verifies refresh tokens, even after a rotation.
   */
  secret: Uint8Array | Hs256Keyring;
  /** The `iss` claim; default "keel". */
  issuer?: string;
  /** The `aud` claim; default "keel". */
  audience?: string;
  /** Lifetime of access tokens in seconds; default 900 (15 minutes). */
  accessTtlSeconds?: number;
  /** Lifetime of refresh tokens in seconds; default 2592000 (30 days). */
  refreshTtlSeconds?: number;
}

export interface IssuedTokens {
  accessToken: string;
  accessExpiresAt: Date;
  refreshToken: string;
  refreshExpiresAt: Date;
  /** What the store keeps of the refresh token. */
  refresh: RefreshTokenRecord;
}

export interface TokenIssuer {
  /** The `iss` and `aud` claims it signs, defaults applied: what verifiers must expect. */
  readonly issuer: string;
  readonly audience: string;
  /**
   * A new access and refresh token pair for a user with `roles`; a new family unless `familyId`
   * continues one.
   */
  issue(userId: bigint, roles: readonly string[], familyId?: string): Promise<IssuedTokens>;
  /** Checks a refresh token's signature, issuer, audience, expiry and type. */
  verifyRefresh(token: string): Promise<{ jti: string; familyId: string; userId: bigint }>;
}

/**
 * JWTs signed with HS256, with the `kid` of the key that signed them. Access tokens carry
 * `typ: "access"`, refresh tokens `typ: "refresh"`.
 */
export function createTokenIssuer(options: TokenIssuerOptions): TokenIssuer {
  if (options.secret instanceof Uint8Array && options.secret.byteLength < 32)
    throw new Error("the JWT secret must be at least 32 bytes");
  const keyring =
    options.secret instanceof Uint8Array
      ? createHs256Keyring({ current: options.secret })
      : options.secret;
  const issuer = options.issuer ?? "keel";
  const audience = options.audience ?? "keel";
  const accessTtl = options.accessTtlSeconds ?? 900;
  const refreshTtl = options.refreshTtlSeconds ?? 30 * 24 * 3600;
  // HS256 with node:crypto on the calling thread (see createHs256Verifier): microseconds, and
  // never queued on libuv's thread pool behind password hashing.
  const sign = (claims: Record<string, unknown>, subject: string, jti: string, exp: number) =>
    signHs256(
      {
        ...claims,
        iss: issuer,
        aud: audience,
        sub: subject,
        jti,
        iat: Math.floor(Date.now() / 1000),
        exp,
      },
      keyring.current,
    );
  const verify = createHs256Verifier(keyring, {
    issuer,
    audience,
    clockToleranceSeconds: 5,
    requiredClaims: ["exp", "sub"],
  });
  const invalid = (cause?: unknown) =>
    new ConnectError(
      "invalid refresh token; log in again",
      Code.Unauthenticated,
      undefined,
      undefined,
      cause,
    );

  return {
    issuer,
    audience,
    async issue(userId, roles, familyId = randomUUID()) {
      const now = Math.floor(Date.now() / 1000);
      const subject = userId.toString();
      const jti = randomUUID();
      const accessExp = now + accessTtl;
      const refreshExp = now + refreshTtl;
      // `sid` names the login an access token belongs to, as `fam` does for refresh tokens.
      const accessToken = sign(
        { typ: "access", roles, sid: familyId },
        subject,
        randomUUID(),
        accessExp,
      );
      const refreshToken = sign({ typ: "refresh", fam: familyId }, subject, jti, refreshExp);
      const refreshExpiresAt = new Date(refreshExp * 1000);
      return {
        accessToken,
        accessExpiresAt: new Date(accessExp * 1000),
        refreshToken,
        refreshExpiresAt,
        refresh: { jti, familyId, userId, expiresAt: refreshExpiresAt },
      };
    },
    async verifyRefresh(token) {
      let payload: Record<string, unknown>;
      try {
        payload = verify(token);
      } catch (err) {
        throw invalid(err);
      }
      const { typ, fam, jti, sub } = payload;
      if (typ !== "refresh" || typeof fam !== "string" || typeof jti !== "string") throw invalid();
      if (typeof sub !== "string" || !/^[1-9][0-9]{0,18}$/.test(sub)) throw invalid();
      return { jti, familyId: fam, userId: BigInt(sub) };
    },
  };
}
