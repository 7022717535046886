import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

export interface PasswordHasherOptions {
  /**
   * log2 of scrypt's CPU/memory cost N. Default 15 (N = 32768: 32 MiB and tens of milliseconds a
   * hash). Hashes record their own parameters, so raising it later keeps old hashes valid.
   */
  cost?: number;
}

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** Constant-time comparison; false for a malformed hash. */
  verify(password: string, encoded: string): Promise<boolean>;
  /** Spends the time of one verification, so that an unknown user answers as slowly as a known one. */
  waste(password: string): Promise<void>;
}

const blockSize = 8;
const parallelization = 1;
const keyLength = 32;

/** Salted scrypt hashes, encoded as `scrypt$N$r$p$salt$hash` (base64url). */
export function createPasswordHasher(options: PasswordHasherOptions = {}): PasswordHasher {
  const cost = 2 ** (options.cost ?? 15);
  const derive = (password: string, salt: Buffer, n: number, r: number, p: number) =>
    new Promise<Buffer>((resolve, reject) =>
      scrypt(
        password.normalize("NFKC"),
        salt,
        keyLength,
        { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 },
        (err, key) => (err ? reject(err) : resolve(key)),
      ),
    );
  const dummySalt = randomBytes(16);

  return {
    async hash(password) {
      const salt = randomBytes(16);
      const key = await derive(password, salt, cost, blockSize, parallelization);
      return ["scrypt", cost, blockSize, parallelization, b64(salt), b64(key)].join("$");
    },
    async verify(password, encoded) {
      const parts = encoded.split("$");
      if (parts.length !== 6 || parts[0] !== "scrypt") return false;
      const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
      const salt = Buffer.from(parts[4] as string, "base64url");
      const expected = Buffer.from(parts[5] as string, "base64url");
      if (!(n > 1 && r > 0 && p > 0) || expected.length !== keyLength) return false;
      const key = await derive(password, salt, n, r, p);
      return timingSafeEqual(key, expected);
    },
    async waste(password) {
      await derive(password, dummySalt, cost, blockSize, parallelization);
    },
  };
}

function b64(buffer: Buffer): string {
  return buffer.toString("base64url");
}
