import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from "node:crypto";
import { errors, type JWTPayload } from "jose";
import type { Hs256Key, Hs256Keyring } from "./hs256-keyring.ts";

export interface Hs256VerifyOptions {
  /** The accepted `iss` claim(s). */
  issuer: string | readonly string[];
  /** The accepted `aud` claim(s): the token's `aud` must hold one of them. */
  audience: string | readonly string[];
  /** Slack for `exp` and `nbf` between clocks, in seconds. */
  clockToleranceSeconds: number;
  /** Claims that must be present. */
  requiredClaims?: readonly string[];
  /** The current time in seconds since the epoch, for tests. Default: the clock. */
  now?: () => number;
}

/** An HS256 JWT verifier bound to one key; see `createHs256Verifier`. */
export type Hs256Verifier = (token: string) => JWTPayload;

/**
 * Verifies HS256 JWTs synchronously, on the calling thread, with one key or with a keyring's key
 * named by the token's `kid` (see `createHs256Keyring`): a SHA-256 HMAC of a few hundred bytes
 * takes microseconds, while jose's WebCrypto verification is a job on libuv's thread pool, queued
 * behind whatever else runs there (password hashing, file system work) — under a flood of
 * scrypt hashes, token checks waited seconds. Checks what jose's `jwtVerify` checks for this
 * algorithm: a compact JWS of three base64url parts; a header with `alg: HS256` and no `crit` or
 * `b64`; the signature in constant time; a JSON object payload; `iss`, `aud`, `exp` and `nbf`
 * (with the tolerance) and the required claims. Failures throw jose's own error classes, so
 * callers handle them as they do jose's.
 */
export function createHs256Verifier(
  secret: Uint8Array | KeyObject | Hs256Keyring,
  options: Hs256VerifyOptions,
): Hs256Verifier {
  const keyOf = keyFinder(secret);
  const issuers = new Set(typeof options.issuer === "string" ? [options.issuer] : options.issuer);
  const audiences = new Set(
    typeof options.audience === "string" ? [options.audience] : options.audience,
  );
  const tolerance = options.clockToleranceSeconds;
  const required = options.requiredClaims ?? [];
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));

  return (token) => {
    const first = token.indexOf(".");
    const second = token.indexOf(".", first + 1);
    if (first < 0 || second < 0 || token.indexOf(".", second + 1) >= 0) {
      throw new errors.JWSInvalid("a JWT has three parts separated by dots");
    }
    const header = parseJson(token.slice(0, first), "header");
    if (header.alg !== "HS256") {
      throw new errors.JOSEAlgNotAllowed(`algorithm ${String(header.alg)} is not accepted`);
    }
    if (header.crit !== undefined || header.b64 !== undefined) {
      throw new errors.JOSENotSupported("crit and b64 headers are not supported");
    }
    if (header.kid !== undefined && typeof header.kid !== "string") {
      throw new errors.JWSInvalid("the kid header must be a string");
    }
    const signature = Buffer.from(token.slice(second + 1), "base64url");
    const signed = token.slice(0, second);
    const keys = keyOf(header.kid);
    if (!keys.some((key) => signatureMatches(signature, signed, key))) {
      throw new errors.JWSSignatureVerificationFailed();
    }
    const payload = parseJson(token.slice(first + 1, second), "payload") as JWTPayload;
    for (const claim of required) {
      if (payload[claim] === undefined) {
        throw new errors.JWTClaimValidationFailed(
          `missing required "${claim}" claim`,
          payload,
          claim,
          "missing",
        );
      }
    }
    if (typeof payload.iss !== "string" || !issuers.has(payload.iss)) {
      throw new errors.JWTClaimValidationFailed(
        'unexpected "iss" claim value',
        payload,
        "iss",
        "check_failed",
      );
    }
    const aud = payload.aud;
    if (
      !(typeof aud === "string"
        ? audiences.has(aud)
        : Array.isArray(aud) && aud.some((a) => audiences.has(a)))
    ) {
      throw new errors.JWTClaimValidationFailed(
        'unexpected "aud" claim value',
        payload,
        "aud",
        "check_failed",
      );
    }
    const t = now();
    if (payload.nbf !== undefined) {
      if (typeof payload.nbf !== "number") {
        throw new errors.JWTInvalid('"nbf" claim must be a number');
      }
      if (payload.nbf > t + tolerance) {
        throw new errors.JWTClaimValidationFailed(
          '"nbf" claim timestamp check failed',
          payload,
          "nbf",
          "check_failed",
        );
      }
    }
    if (payload.exp !== undefined) {
      if (typeof payload.exp !== "number")
        throw new errors.JWTInvalid('"exp" claim must be a number');
      if (payload.exp <= t - tolerance) {
        throw new errors.JWTExpired(
          '"exp" claim timestamp check failed',
          payload,
          "exp",
          "check_failed",
        );
      }
    }
    if (payload.iat !== undefined && typeof payload.iat !== "number") {
      throw new errors.JWTInvalid('"iat" claim must be a number');
    }
    return payload;
  };
}

/**
 * Signs `payload` as a compact HS256 JWT (header `{"alg":"HS256","typ":"JWT"}`, with the key's
 * `kid` when it is an `Hs256Key`), synchronously: see `createHs256Verifier` for why not jose's
 * WebCrypto signing.
 */
export function signHs256(payload: JWTPayload, secret: Uint8Array | KeyObject | Hs256Key): string {
  const { key, header } =
    secret instanceof Uint8Array
      ? { key: createSecretKey(secret), header: hs256Header }
      : "kid" in secret
        ? { key: secret.key, header: encode({ alg: "HS256", typ: "JWT", kid: secret.kid }) }
        : { key: secret, header: hs256Header };
  const input = `${header}.${encode(payload)}`;
  return `${input}.${createHmac("sha256", key).update(input).digest("base64url")}`;
}

const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
const hs256Header = encode({ alg: "HS256", typ: "JWT" });

/**
 * The keys a token's signature may be checked with: one key, whatever the `kid`; from a keyring,
 * the key the `kid` names (none when it names no accepted key), or every accepted key for a token
 * without one (signed before keys had ids; at most `maxHs256Keys` HMACs).
 */
function keyFinder(
  secret: Uint8Array | KeyObject | Hs256Keyring,
): (kid: string | undefined) => readonly KeyObject[] {
  if (secret instanceof Uint8Array) {
    const keys = [createSecretKey(secret)];
    return () => keys;
  }
  if (!("current" in secret)) {
    const keys = [secret];
    return () => keys;
  }
  return (kid) => {
    if (kid === undefined) return secret.all;
    const key = secret.get(kid);
    return key === undefined ? [] : [key];
  };
}

function signatureMatches(signature: Buffer, signed: string, key: KeyObject): boolean {
  const expected = createHmac("sha256", key).update(signed).digest();
  return signature.length === expected.length && timingSafeEqual(signature, expected);
}

function parseJson(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
  } catch {
    throw new errors.JWTInvalid(`the JWT ${what} is not base64url-encoded JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new errors.JWTInvalid(`the JWT ${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}
