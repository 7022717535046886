import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** What every API key starts with: how a bearer credential is told from a JWT. */
export const apiKeyPrefix = "keel_";

/** `keel_<16 hex: the key id>_<43 base64url characters: 256 random bits>`. */
const shape = /^keel_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** A new key, its id and its hash; the key itself is shown once and never stored. */
export interface NewKey {
  id: string;
  key: string;
  hash: string;
}

/**
 * Makes a key: 256 random bits, its id (a MAC of them under `secret`, so that a key this server
 * never made is refused without a database read) and the key's hash under `secret`.
 */
export function generateApiKey(secret: Uint8Array): NewKey {
  const random = randomBytes(32).toString("base64url");
  const id = idOf(secret, random);
  const key = `${apiKeyPrefix}${id}_${random}`;
  return { id, key, hash: hashApiKey(secret, key) };
}

/**
 * The key's id, or undefined when `key` is not one this server's secret made (a wrong shape, or
 * an id that is not its random part's MAC): checked in microseconds, with no database read.
 */
export function apiKeyIdOf(secret: Uint8Array, key: string): string | undefined {
  const match = shape.exec(key);
  if (match === null) return undefined;
  const [, id, random] = match as unknown as [string, string, string];
  return sameHash(id, idOf(secret, random)) ? id : undefined;
}

function idOf(secret: Uint8Array, random: string): string {
  return createHmac("sha256", secret).update(`id:${random}`).digest("hex").slice(0, 16);
}

/**
 * HMAC-SHA256 of the key under the server's secret, hex: a fast keyed hash, so that checking a
 * key costs microseconds (never the password hasher's queue), and a leaked table reveals no key
 * and cannot be checked against guesses without the secret.
 */
export function hashApiKey(secret: Uint8Array, key: string): string {
  return createHmac("sha256", secret).update(key).digest("hex");
}

/** Whether two hex hashes are equal, in time that does not depend on where they differ. */
export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, "hex");
  const y = Buffer.from(b, "hex");
  return x.length === y.length && timingSafeEqual(x, y);
}
