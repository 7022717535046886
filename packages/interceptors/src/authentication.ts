import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  errors,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
  jwtVerify,
} from "jose";
import { z } from "zod";
import { type Principal, principalKey } from "./context.ts";
import { createHs256Verifier } from "./hs256.ts";
import type { Hs256Keyring } from "./hs256-keyring.ts";
import type { OidcVerifier } from "./oidc-verifier.ts";
import { createPolicyResolver, type ExtraPolicies } from "./policy.ts";

export interface AuthenticationOptions {
  /**
   * The HS256 key shared with the token issuer (at least 32 bytes), or the issuer's keyring, whose
   * keys are found by the token's `kid` and may be rotated while running (tokens verified with a
   * key since removed are then verified again, and refused). Default: HS256 not accepted.
   */
  secret?: Uint8Array | Hs256Keyring;
  /**
   * Public keys for RS256 and ES256 tokens: a JSON Web Key Set (for example read from a file) or
   * the URL to fetch it from (fetched on demand, cached, refetched when a token names an unknown
   * key). Default: RS256/ES256 not accepted.
   */
  jwks?: JSONWebKeySet | URL;
  /**
   * An external OpenID Connect issuer (see `createOidcVerifier`): tokens whose `iss` is its issuer
   * are verified with its keys, audience and role mapping; `issuer` and `audience` below are for
   * the others. Default none.
   */
  oidc?: OidcVerifier;
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
  /**
   * Runs on every call that carries a valid token, cached or not, after the token is verified:
   * throw (or reject with) a `ConnectError` to refuse the caller, for example because their
   * account was suspended after the token was issued. Return nothing, synchronously, when the
   * answer is at hand, so that the call goes on without a promise. On a public method a refused
   * caller is treated as anonymous. Default: none.
   */
  checkPrincipal?: (principal: Principal) => void | Promise<void>;
  /**
   * API keys, for machines: a key sent as `x-api-key: <key>`, or as `authorization: Bearer <key>`
   * when it starts with `prefix` (a JWT never does), is checked by `authenticate`, which returns
   * the caller (synchronously when it can) or throws (rejects with) UNAUTHENTICATED. Default: API
   * keys are not accepted, and a call that sends `x-api-key` is told so.
   */
  apiKeys?: {
    prefix: string;
    authenticate: (key: string) => Principal | Promise<Principal>;
  };
}

// Access tokens: keel's own carry `typ: "access"`; tokens of another issuer may carry no `typ`,
// but a refresh token (`typ: "refresh"`) is never accepted as an access token.
const claimsSchema = z.object({
  sub: z.string().min(1).max(256),
  typ: z.literal("access").optional(),
  roles: z.array(z.string().max(64)).max(64).default([]),
  jti: z.string().max(256).optional(),
  sid: z.string().max(256).optional(),
  iss: z.string().max(1024).optional(),
  exp: z.number(),
});

/**
 * Verifies `authorization: Bearer <JWT>` and puts the caller in the context under
 * `principalKey`. Accepts HS256 with the shared secret (verified synchronously on the calling
 * thread, see `createHs256Verifier`), RS256/ES256 of the OpenID Connect issuer their `iss` names
 * (`oidc`) and RS256/ES256 from the JWKS (with jose), nothing else (no
 * `none`, no algorithm confusion between the two kinds of key); checks `iss`, `aud`, `exp` and
 * `nbf` with a small tolerance; validates the claims with zod; then `checkPrincipal`, if given.
 * Anything wrong → UNAUTHENTICATED with a message saying what to do, never why a signature failed.
 */
export function createAuthenticationInterceptor(
  options: AuthenticationOptions,
): AuthenticationInterceptor {
  const algorithms = [
    ...(options.secret === undefined ? [] : ["HS256"]),
    ...(options.jwks === undefined ? [] : ["RS256", "ES256"]),
  ];
  const oidc = options.oidc;
  if (algorithms.length === 0 && oidc === undefined) {
    throw new Error("authentication needs a secret, a JWKS or an OpenID Connect issuer");
  }
  if (options.secret instanceof Uint8Array && options.secret.byteLength < 32) {
    throw new Error("the HS256 secret must be at least 32 bytes");
  }
  const jwks: JWTVerifyGetKey | undefined =
    options.jwks === undefined
      ? undefined
      : options.jwks instanceof URL
        ? createRemoteJWKSet(options.jwks, { cacheMaxAge: 10 * 60_000, cooldownDuration: 30_000 })
        : createLocalJWKSet(options.jwks);
  const getKey: JWTVerifyGetKey = async (header, token) => {
    if ((header.alg === "RS256" || header.alg === "ES256") && jwks !== undefined)
      return jwks(header, token);
    throw new errors.JOSEAlgNotAllowed(`algorithm ${String(header.alg)} is not accepted`);
  };
  const verifyOptions = {
    algorithms: algorithms.filter((alg) => alg !== "HS256"),
    issuer: options.issuer,
    audience: options.audience,
    clockTolerance: options.clockToleranceSeconds ?? 30,
    requiredClaims: ["exp", "sub"],
  };
  const verifyHs256 =
    options.secret === undefined
      ? undefined
      : createHs256Verifier(options.secret, {
          issuer: options.issuer,
          audience: options.audience,
          clockToleranceSeconds: verifyOptions.clockTolerance,
          requiredClaims: verifyOptions.requiredClaims,
        });
  const checkPrincipal = options.checkPrincipal;
  // A public method needs no token; it still gets a principal when a valid one is sent, and an
  // invalid one is ignored there.
  const policyOf = createPolicyResolver(options.policies);
  const isPublic = (method: DescMethod) => policyOf(method).public;
  const cache = new TokenCache(options.cacheSize ?? 10_000);
  if (options.secret !== undefined && !(options.secret instanceof Uint8Array)) {
    // A rotation may have removed the key a remembered token was signed with.
    options.secret.onUpdate(() => cache.clear());
  }

  /** The caller a token names, once its signature and claims are checked. */
  const toPrincipal = (header: string, payload: unknown): Principal => {
    const claims = claimsSchema.safeParse(payload);
    if (!claims.success) {
      const refresh = (payload as { typ?: unknown }).typ === "refresh";
      throw unauthenticated(
        refresh
          ? "a refresh token is not an access token; exchange it with RefreshToken"
          : "invalid token claims; log in again",
      );
    }
    const { sub, roles, jti, sid, iss, exp } = claims.data;
    const principal: Principal = {
      subject: sub,
      userId: /^[1-9][0-9]{0,18}$/.test(sub) ? BigInt(sub) : undefined,
      roles,
      tokenId: jti,
      issuer: iss,
      sessionId: sid,
    };
    cache.set(header, principal, exp * 1000);
    return principal;
  };

  /** The caller, synchronously for HS256 tokens; a promise only for RS256/ES256 ones. */
  const authenticate = (header: string): Principal | Promise<Principal> => {
    const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/.exec(header);
    if (match === null) {
      throw unauthenticated(
        "malformed authorization header; send `authorization: Bearer <access token>`",
      );
    }
    const token = match[1] as string;
    if (verifyHs256 !== undefined) {
      let payload: unknown;
      try {
        payload = verifyHs256(token);
      } catch (err) {
        // Another algorithm: RS256 and ES256 tokens are jose's to verify, with the JWKS.
        if (
          !(err instanceof errors.JOSEAlgNotAllowed && (jwks !== undefined || oidc !== undefined))
        ) {
          throw unauthenticated(describe(err), err);
        }
      }
      if (payload !== undefined) return toPrincipal(header, payload);
    }
    if (oidc !== undefined && issuerOf(token) === oidc.issuer) {
      return oidc.verify(token).then(({ principal, expiresAt }) => {
        cache.set(header, principal, expiresAt);
        return principal;
      });
    }
    if (jwks === undefined) throw unauthenticated("invalid access token; log in again");
    return jwtVerify(token, getKey, verifyOptions).then(
      ({ payload }) => toPrincipal(header, payload),
      (err: unknown) => {
        throw unauthenticated(describe(err), err);
      },
    );
  };

  /** The call with `principal` in its context, once `checkPrincipal` lets it through. */
  const proceed = <T>(
    req: { contextValues: { set(key: typeof principalKey, value: Principal): unknown } },
    principal: Principal,
    publicMethod: boolean,
    next: () => Promise<T>,
  ): Promise<T> => {
    let pending: void | Promise<void>;
    try {
      pending = checkPrincipal?.(principal);
    } catch (err) {
      // A public method answers anyone; a refused caller is anonymous there.
      return publicMethod ? next() : Promise.reject(err);
    }
    if (pending === undefined) {
      req.contextValues.set(principalKey, principal);
      return next();
    }
    return pending.then(
      () => {
        req.contextValues.set(principalKey, principal);
        return next();
      },
      (err: unknown) => {
        if (publicMethod) return next();
        throw err;
      },
    );
  };

  const apiKeys = options.apiKeys;
  const apiKeyBearer = apiKeys === undefined ? undefined : `Bearer ${apiKeys.prefix}`;
  /** Whether a call carries an API key: `x-api-key`, or a bearer credential with the prefix. */
  const hasApiKey = (header: string | null, apiKey: string | null) =>
    apiKey !== null || (apiKeyBearer !== undefined && header?.startsWith(apiKeyBearer) === true);

  /** The caller a call's API key names; throws (or rejects with) UNAUTHENTICATED. */
  const keyPrincipal = (
    header: string | null,
    apiKey: string | null,
  ): Principal | Promise<Principal> => {
    if (apiKeys === undefined) {
      throw unauthenticated(
        "API keys are not accepted here; send `authorization: Bearer <access token>`",
      );
    }
    if (apiKey !== null && header !== null) {
      throw unauthenticated("send one credential: `x-api-key` or `authorization`, not both");
    }
    return apiKeys.authenticate(apiKey ?? (header as string).slice("Bearer ".length));
  };

  /** The call authenticated by its API key. */
  const withApiKey = <T>(
    req: Parameters<Parameters<Interceptor>[0]>[0],
    header: string | null,
    apiKey: string | null,
    go: () => Promise<T>,
  ): Promise<T> => {
    const publicMethod = isPublic(req.method);
    // A public method answers anyone: a credential it cannot use is ignored there.
    const refuse = (err: unknown) => (publicMethod ? go() : Promise.reject(err));
    let principal: Principal | Promise<Principal>;
    try {
      principal = keyPrincipal(header, apiKey);
    } catch (err) {
      return refuse(err);
    }
    if (!(principal instanceof Promise)) return proceed(req, principal, publicMethod, go);
    return principal.then((p) => proceed(req, p, publicMethod, go), refuse);
  };

  const gate: AuthenticationInterceptor["gate"] = ({ method, requestHeader }) => {
    if (isPublic(method)) return;
    const header = requestHeader.get("authorization");
    const apiKey = requestHeader.get("x-api-key");
    if (hasApiKey(header, apiKey)) {
      // The key's record is then fresh in memory: the interceptor finds it at once.
      const principal = keyPrincipal(header, apiKey);
      return principal instanceof Promise ? principal.then(() => {}) : undefined;
    }
    if (header === null) throw unauthenticated(missingToken);
    if (cache.get(header) !== undefined) return;
    const principal = authenticate(header);
    return principal instanceof Promise ? principal.then(() => {}) : undefined;
  };

  // Not an async function: a call whose token is cached or HS256 (or that needs none) goes
  // straight on, without a promise and a microtask of its own.
  const interceptor: Interceptor = (next) => (req) => {
    const header = req.header.get("authorization");
    const apiKey = req.header.get("x-api-key");
    if (hasApiKey(header, apiKey)) return withApiKey(req, header, apiKey, () => next(req));
    if (header === null) {
      if (!isPublic(req.method)) {
        return Promise.reject(unauthenticated(missingToken));
      }
      return next(req);
    }
    const go = () => next(req);
    // Verified tokens are kept by their header value: a repeat costs one lookup.
    const cached = cache.get(header);
    if (cached !== undefined) return proceed(req, cached, isPublic(req.method), go);
    let principal: Principal | Promise<Principal>;
    try {
      principal = authenticate(header);
    } catch (err) {
      // A public method answers anyone; a stale token sent along (say, to RefreshToken) is ignored.
      return isPublic(req.method) ? next(req) : Promise.reject(err);
    }
    if (!(principal instanceof Promise)) return proceed(req, principal, isPublic(req.method), go);
    return principal.then(
      (p) => proceed(req, p, isPublic(req.method), go),
      (err: unknown) => {
        if (!isPublic(req.method)) throw err;
        return next(req);
      },
    );
  };
  return Object.assign(interceptor, { gate });
}

/** The authentication interceptor, with the same check for a request gate. */
export interface AuthenticationInterceptor extends Interceptor {
  /**
   * The check on a call's headers alone, for a request gate (`requestGate` of @keel/engine), so
   * that a call to a method that needs a token is refused before its body is read when it has
   * none or an invalid one. A valid token is remembered, and the interceptor finds it at once;
   * `checkPrincipal` is left to the interceptor.
   */
  gate(call: { method: DescMethod; requestHeader: Headers }): void | Promise<void>;
}

const missingToken =
  "missing access token; send `authorization: Bearer <access token>` (get one with Login)";

/** The `iss` claim of a token not yet verified, to choose the keys it is verified with. */
function issuerOf(token: string): unknown {
  try {
    return decodeJwt(token).iss;
  } catch {
    return undefined;
  }
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

  clear(): void {
    this.entries.clear();
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
