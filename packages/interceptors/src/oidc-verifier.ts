import { Code, ConnectError } from "@connectrpc/connect";
import { createRemoteJWKSet, errors, type JWTPayload, jwtVerify, type RemoteJWKSet } from "jose";
import { z } from "zod";
import type { Principal } from "./context.ts";

export interface OidcVerifierOptions {
  /**
   * The issuer's URL, exactly as its tokens' `iss` claim has it, for example
   * `https://idp.example/realms/keel`. Its discovery document is read from
   * `<issuer>/.well-known/openid-configuration`, and the keys from the `jwks_uri` it names.
   */
  issuer: string;
  /** The accepted `aud` claim(s): a token must name one of them. */
  audience: string | readonly string[];
  /**
   * Where the token holds the caller's roles: a claim, or a dotted path into nested objects such
   * as `realm_access.roles`. A list of strings, or one string of space-separated names (as
   * `scope` is). Default "roles".
   */
  rolesClaim?: string;
  /**
   * The issuer's role names and the keel role each one grants; roles it does not list grant
   * nothing. Default: the claim's names are keel's role names.
   */
  roleMapping?: Readonly<Record<string, string>>;
  /**
   * The least time between two fetches of the key set, in ms: a token naming an unknown `kid`
   * makes the verifier fetch it again (the issuer rotated its keys), at most this often; within
   * it such a token is refused without a request. Default 30000.
   */
  jwksCooldownMs?: number;
  /** Fetch the key set again after this long even when every `kid` is known, in ms. Default 600000. */
  jwksMaxAgeMs?: number;
  /** How long the discovery document and key set requests may take, in ms. Default 5000. */
  timeoutMs?: number;
  /** Slack for `exp` and `nbf` between clocks, in seconds. Default 30. */
  clockToleranceSeconds?: number;
}

/** Verifies access tokens of one OpenID Connect issuer; see `createOidcVerifier`. */
export interface OidcVerifier {
  /** The issuer, as configured: tokens whose `iss` is this are this verifier's. */
  readonly issuer: string;
  /**
   * The caller a token names, and when the token expires (ms since the epoch). Rejects with
   * UNAUTHENTICATED for a token that is not valid, UNAVAILABLE when the issuer cannot be reached.
   */
  verify(token: string): Promise<{ principal: Principal; expiresAt: number }>;
  /** Reads the discovery document and the key set now, to report a problem at start. */
  warm(): Promise<void>;
}

const discoverySchema = z.object({
  issuer: z.string(),
  jwks_uri: z.url({ protocol: /^https?$/ }),
});

const claimsSchema = z.object({
  sub: z.string().min(1).max(256),
  exp: z.number(),
  jti: z.string().max(256).optional(),
});

/**
 * Access tokens of an external OpenID Connect issuer (Keycloak, Auth0, Entra ID, Dex, …): RS256
 * or ES256, signed by a key of the set its discovery document names. The discovery document is
 * read on first use (again after a failure, at most once per `jwksCooldownMs`); the key set is
 * cached (jose's `createRemoteJWKSet`) and fetched again for an unknown `kid`, never more often
 * than `jwksCooldownMs`. `iss`, `aud`, `exp` and `nbf` are checked; the caller's roles come from
 * `rolesClaim` through `roleMapping`. The principal names no keel user (`userId` undefined): an
 * issuer's subject `1` is not keel's user 1.
 */
export function createOidcVerifier(options: OidcVerifierOptions): OidcVerifier {
  const issuer = options.issuer;
  const cooldownMs = options.jwksCooldownMs ?? 30_000;
  const timeoutMs = options.timeoutMs ?? 5000;
  const rolesOf = createRolesReader(options.rolesClaim ?? "roles", options.roleMapping);
  const verifyOptions = {
    algorithms: ["RS256", "ES256"],
    issuer,
    audience: typeof options.audience === "string" ? options.audience : [...options.audience],
    clockTolerance: options.clockToleranceSeconds ?? 30,
    requiredClaims: ["exp", "sub"],
  };
  let keys: Promise<RemoteJWKSet> | undefined;
  let failure: { at: number; message: string } | undefined;

  const discover = async (): Promise<RemoteJWKSet> => {
    const url = `${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
    const response = await fetch(url, {
      headers: { accept: "application/json" },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!response.ok) throw new Error(`${url} answered HTTP ${response.status}`);
    const document = discoverySchema.safeParse(await response.json());
    if (!document.success) throw new Error(`${url} holds no issuer and jwks_uri`);
    if (document.data.issuer !== issuer) {
      throw new Error(`${url} is the document of issuer ${document.data.issuer}, not ${issuer}`);
    }
    const jwksUri = new URL(document.data.jwks_uri);
    if (jwksUri.protocol === "http:" && new URL(issuer).protocol === "https:") {
      throw new Error(`${url} names a key set over plain http: ${jwksUri.href}`);
    }
    return createRemoteJWKSet(jwksUri, {
      cooldownDuration: cooldownMs,
      cacheMaxAge: options.jwksMaxAgeMs ?? 600_000,
      timeoutDuration: timeoutMs,
    });
  };
  const keySet = (): Promise<RemoteJWKSet> => {
    if (keys !== undefined) return keys;
    // An issuer that could not be reached is asked again only after the cooldown.
    if (failure !== undefined && Date.now() - failure.at < cooldownMs) {
      return Promise.reject(unreachable(failure.message));
    }
    keys = discover().then(
      (found) => {
        failure = undefined;
        return found;
      },
      (err: unknown) => {
        keys = undefined;
        failure = { at: Date.now(), message: (err as Error).message };
        throw unreachable(failure.message, err);
      },
    );
    return keys;
  };

  return {
    issuer,
    async verify(token) {
      const getKey = await keySet();
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, getKey, verifyOptions));
      } catch (err) {
        throw refusal(err);
      }
      const claims = claimsSchema.safeParse(payload);
      if (!claims.success) throw unauthenticated("invalid token claims; log in again");
      const { sub, exp, jti } = claims.data;
      return {
        principal: {
          subject: sub,
          userId: undefined,
          roles: rolesOf(payload),
          tokenId: jti,
          issuer,
        },
        expiresAt: exp * 1000,
      };
    },
    async warm() {
      const set = await keySet();
      if (set.jwks() !== undefined) return;
      await set.reload().catch((err: unknown) => {
        throw unreachable(err instanceof Error ? err.message : String(err), err);
      });
    },
  };
}

/** Reads roles at a dotted path, keeps names of at most 64 characters (64 of them), maps them. */
function createRolesReader(
  path: string,
  mapping: Readonly<Record<string, string>> | undefined,
): (payload: JWTPayload) => string[] {
  const parts = path.split(".");
  return (payload) => {
    let value: unknown = payload;
    for (const part of parts) {
      value =
        typeof value === "object" && value !== null && Object.hasOwn(value, part)
          ? (value as Record<string, unknown>)[part]
          : undefined;
    }
    const names = typeof value === "string" ? value.split(" ") : Array.isArray(value) ? value : [];
    const roles = new Set<string>();
    for (const name of names) {
      if (typeof name !== "string" || name === "" || name.length > 64) continue;
      const role =
        mapping === undefined ? name : Object.hasOwn(mapping, name) ? mapping[name] : undefined;
      if (role !== undefined) roles.add(role);
      if (roles.size === 64) break;
    }
    return [...roles];
  };
}

function unauthenticated(message: string, cause?: unknown): ConnectError {
  return new ConnectError(message, Code.Unauthenticated, undefined, undefined, cause);
}

function unreachable(problem: string, cause?: unknown): ConnectError {
  return new ConnectError(
    `cannot verify the token: the identity provider cannot be reached (${problem}); try again later`,
    Code.Unavailable,
    undefined,
    undefined,
    cause,
  );
}

/** A token jose refused: UNAUTHENTICATED, or UNAVAILABLE when the key set could not be fetched. */
function refusal(err: unknown): ConnectError {
  // jose's generic error is the key set's HTTP status or body; anything else not jose's, the network.
  if (
    !(err instanceof errors.JOSEError) ||
    err instanceof errors.JWKSTimeout ||
    err.code === errors.JOSEError.code
  ) {
    return unreachable(err instanceof Error ? err.message : String(err), err);
  }
  if (err instanceof errors.JWTExpired) {
    return unauthenticated("access token expired; get a new one from the identity provider", err);
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    return unauthenticated(
      err.claim === "nbf"
        ? "access token not valid yet; check the clocks"
        : `access token not accepted here (${err.claim} claim); get one for this service`,
      err,
    );
  }
  return unauthenticated("invalid access token; get a new one from the identity provider", err);
}
