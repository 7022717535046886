import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
  jwtVerify,
} from "jose";
import { z } from "zod";
import { type Principal, principalKey } from "./context.ts";
import { createPolicyResolver, type ExtraPolicies } from "./policy.ts";

export interface AuthenticationOptions {
  /** The HS256 key shared with the token issuer (at least 32 bytes). Default: HS256 not accepted. */
  secret?: Uint8Array;
  /**
   * Public keys for RS256 and ES256 tokens: a JSON Web Key Set (for example read from a file) or
   * the URL to fetch it from (fetched on demand, cached, refetched when a token names an unknown
   * key). Default: RS256/ES256 not accepted.
   */
  jwks?: JSONWebKeySet | URL;
  /** The accepted `iss` claim(s). */
  issuer: string | string[];
  /** The accepted `aud` claim(s). */
  audience: string | string[];
  /** Slack for `exp` and `nbf` between clocks, in seconds. Default 30. */
  clockToleranceSeconds?: number;
  /**
   * Rules for services without `(policy.v1.method)` options, as given to the authorization
   * interceptor: those marked public need no token. Default none.
   */
  policies?: ExtraPolicies;
  /** How many verified tokens to remember until they expire, to skip re-verifying. Default 10000. */
  cacheSize?: number;
}

// Access tokens: keel's own carry `typ: "access"`; tokens of another issuer may carry no `typ`,
// but a refresh token (`typ: "refresh"`) is never accepted as an access token.
const claimsSchema = z.object({
  sub: z.string().min(1).max(256),
  typ: z.literal("access").optional(),
  roles: z.array(z.string().max(64)).max(64).default([]),
  jti: z.string().max(256).optional(),
  exp: z.number(),
});

/**
 * Verifies `authorization: Bearer <JWT>` with jose and puts the caller in the context under
 * `principalKey`. Accepts HS256 with the shared secret and RS256/ES256 from the JWKS, nothing
 * else (no `none`, no algorithm confusion between the two kinds of key); checks `iss`, `aud`,
 * `exp` and `nbf` with a small tolerance; validates the claims with zod. Anything wrong →
 * UNAUTHENTICATED with a message saying what to do, never why a signature failed.
 */
export function createAuthenticationInterceptor(options: AuthenticationOptions): Interceptor {
  const algorithms = [
    ...(options.secret === undefined ? [] : ["HS256"]),
    ...(options.jwks === undefined ? [] : ["RS256", "ES256"]),
  ];
  if (algorithms.length === 0) throw new Error("authentication needs a secret, a JWKS, or both");
  if (options.secret !== undefined && options.secret.byteLength < 32) {
    throw new Error("the HS256 secret must be at least 32 bytes");
  }
  const jwks: JWTVerifyGetKey | undefined =
    options.jwks === undefined
      ? undefined
      : options.jwks instanceof URL
        ? createRemoteJWKSet(options.jwks, { cacheMaxAge: 10 * 60_000, cooldownDuration: 30_000 })
        : createLocalJWKSet(options.jwks);
  const getKey: JWTVerifyGetKey = async (header, token) => {
    if (header.alg === "HS256" && options.secret !== undefined) return options.secret;
    if ((header.alg === "RS256" || header.alg === "ES256") && jwks !== undefined)
      return jwks(header, token);
    throw new errors.JOSEAlgNotAllowed(`algorithm ${String(header.alg)} is not accepted`);
  };
  const verifyOptions = {
    algorithms,
    issuer: options.issuer,
    audience: options.audience,
    clockTolerance: options.clockToleranceSeconds ?? 30,
    requiredClaims: ["exp", "sub"],
  };
  // A public method needs no token; it still gets a principal when a valid one is sent, and an
  // invalid one is ignored there.
  const policyOf = createPolicyResolver(options.policies);
  const isPublic = (method: DescMethod) => policyOf(method).public;
  const cache = new TokenCache(options.cacheSize ?? 10_000);

  const authenticate = async (header: string): Promise<Principal> => {
    const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/.exec(header);
    if (match === null) {
      throw unauthenticated(
        "malformed authorization header; send `authorization: Bearer <access token>`",
      );
    }
    const token = match[1] as string;
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, getKey, verifyOptions));
    } catch (err) {
      throw unauthenticated(describe(err), err);
    }
    const claims = claimsSchema.safeParse(payload);
    if (!claims.success) {
      const refresh = (payload as { typ?: unknown }).typ === "refresh";
      throw unauthenticated(
        refresh
          ? "a refresh token is not an access token; exchange it with RefreshToken"
          : "invalid token claims; log in again",
      );
    }
    const { sub, roles, jti, exp } = claims.data;
    const principal: Principal = {
      subject: sub,
      userId: /^[1-9][0-9]{0,18}$/.test(sub) ? BigInt(sub) : undefined,
      roles,
      tokenId: jti,
    };
    cache.set(header, principal, exp * 1000);
    return principal;
  };

  // Not an async function: a call whose token is cached (or that needs none) goes straight on,
  // without a promise and a microtask of its own.
  return (next) => (req) => {
    const header = req.header.get("authorization");
    if (header === null) {
      if (!isPublic(req.method)) {
        return Promise.reject(
          unauthenticated(
            "missing access token; send `authorization: Bearer <access token>` (get one with Login)",
          ),
        );
      }
      return next(req);
    }
    // Verified tokens are kept by their header value: a repeat costs one lookup.
    const cached = cache.get(header);
    if (cached !== undefined) {
      req.contextValues.set(principalKey, cached);
      return next(req);
    }
    return authenticate(header).then(
      (principal) => {
        req.contextValues.set(principalKey, principal);
        return next(req);
      },
      (err: unknown) => {
        // A public method answers anyone; a stale token sent along (say, to RefreshToken) is ignored.
        if (!isPublic(req.method)) throw err;
        return next(req);
      },
    );
  };
}

function unauthenticated(message: string, cause?: unknown): ConnectError {
  return new ConnectError(message, Code.Unauthenticated, undefined, undefined, cause);
}

function describe(err: unknown): string {
  if (err instanceof errors.JWTExpired) return "access token expired; refresh it or log in again";
  if (err instanceof errors.JWTClaimValidationFailed) {
    return err.claim === "nbf"
      ? "access token not valid yet; check the clocks"
      : `access token not accepted here (${err.claim} claim); log in to this service`;
  }
  return "invalid access token; log in again";
}

/** Verified tokens until they expire, at most `max`, the oldest forgotten first. */
class TokenCache {
  private readonly entries = new Map<string, { principal: Principal; expiresAt: number }>();
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  get(token: string): Principal | undefined {
    const entry = this.entries.get(token);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.entries.delete(token);
      return undefined;
    }
    return entry.principal;
  }

  set(token: string, principal: Principal, expiresAt: number): void {
    if (this.max <= 0) return;
    if (this.entries.size >= this.max) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(token, { principal, expiresAt });
  }
}
