import { createHash, createSecretKey, type KeyObject } from "node:crypto";

/** The HS256 keys of a token issuer: one signs, all of them verify. */
export interface Hs256Keys {
  /** The key new tokens are signed with (and verified with), at least 32 bytes. */
  current: Uint8Array;
  /**
   * Further keys whose tokens are still accepted but that sign nothing: the previous keys after a
   * rotation, until their tokens expire, or the next key before every instance signs with it.
   * At most 8. Default none.
   */
  accepted?: readonly Uint8Array[];
}

/** One key and its id: the `kid` header of the tokens it signs. */
export interface Hs256Key {
  kid: string;
  key: KeyObject;
}

/**
 * The HS256 keys in force, shared by the issuer that signs and the verifiers, and replaced in
 * place on a rotation (see `createHs256Keyring`).
 */
export interface Hs256Keyring {
  /** The key new tokens are signed with. */
  readonly current: Hs256Key;
  /** The accepted key with this id: one map lookup. */
  get(kid: string): KeyObject | undefined;
  /** Every accepted key, the current one first: for tokens signed before keys had ids. */
  readonly all: readonly KeyObject[];
  /** Replaces the keys for tokens signed and verified from now on; throws on a key too short. */
  update(keys: Hs256Keys): void;
  /** Calls `listener` after each `update` (to forget tokens verified with a removed key). */
  onUpdate(listener: () => void): void;
}

/** The most keys accepted at once: a token without an id is tried against each. */
export const maxHs256Keys = 9;

/**
 * The `kid` of an HS256 key: 16 base64url characters (96 bits) of a SHA-256 of the key, so that
 * the same secret has the same id on every instance and across restarts, with nothing to name.
 * It says nothing usable about the key, which is at least 32 bytes.
 */
export function hs256KeyId(secret: Uint8Array): string {
  return createHash("sha256")
    .update("keel hs256 key id\0")
    .update(secret)
    .digest("base64url")
    .slice(0, 16);
}

/**
 * A keyring for keel's own HS256 tokens: `current` signs (its tokens carry its `kid`), `current`
 * and `accepted` verify, by the token's `kid`. `update` rotates the keys while running.
 */
export function createHs256Keyring(keys: Hs256Keys): Hs256Keyring {
  let state = build(keys);
  const listeners: (() => void)[] = [];
  return {
    get current() {
      return state.current;
    },
    get all() {
      return state.all;
    },
    get: (kid) => state.byId.get(kid),
    update(next) {
      state = build(next);
      for (const listener of listeners) listener();
    },
    onUpdate(listener) {
      listeners.push(listener);
    },
  };
}

function build(keys: Hs256Keys) {
  const secrets = [keys.current, ...(keys.accepted ?? [])];
  if (secrets.length > maxHs256Keys) {
    throw new Error(`at most ${maxHs256Keys - 1} accepted HS256 keys besides the current one`);
  }
  const byId = new Map<string, KeyObject>();
  for (const secret of secrets) {
    if (secret.byteLength < 32) throw new Error("an HS256 key must be at least 32 bytes");
    byId.set(hs256KeyId(secret), createSecretKey(secret));
  }
  const kid = hs256KeyId(keys.current);
  return { current: { kid, key: byId.get(kid) as KeyObject }, byId, all: [...byId.values()] };
}
