import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { availableParallelism } from "node:os";
import { createFairQueue, type FairQueue, type FairQueueOptions } from "./fair-queue.ts";

export interface PasswordHasherOptions {
  /**
   * log2 of scrypt's CPU/memory cost N. Default 15 (N = 32768: 32 MiB and tens of milliseconds a
   * hash). Hashes record their own parameters, so raising it later keeps old hashes valid.
   */
  cost?: number;
  /**
   * How hashing is shared between callers (see `createFairQueue`). Default: half the CPUs this
   * process may use at once (at least 1: hashes on more threads than cores only slow each other,
   * and a login that waits for a flood's hash waits for all of its CPU time), 64 waiting, 4 per
   * caller. libuv's thread pool has 4 threads: what hashing leaves stays free for other work.
   */
  queue?: Partial<Pick<FairQueueOptions, "concurrency" | "maxQueued" | "perCaller">>;
}

/** Who a hash is for, to share hashing fairly: the caller's address, and the call's signal. */
export interface HashCaller {
  /** The client address (or another key) whose share the hash takes. */
  caller: string;
  /** Aborts the wait for a turn (not a hash under way): the call ended. */
  signal?: AbortSignal;
}

export interface PasswordHasher {
  hash(password: string, by: HashCaller): Promise<string>;
  /** Constant-time comparison; false for a malformed hash. */
  verify(password: string, encoded: string, by: HashCaller): Promise<boolean>;
  /** Spends the time of one verification, so that an unknown user answers as slowly as a known one. */
  waste(password: string, by: HashCaller): Promise<void>;
  /** The hashing queue's counts. */
  readonly queue: Pick<FairQueue, "stats">;
}

const blockSize = 8;
const parallelization = 1;
const keyLength = 32;

/**
 * Salted scrypt hashes, encoded as `scrypt$N$r$p$salt$hash` (base64url). Every hash, verification
 * and wasted verification waits its turn in a bounded queue that is fair between callers, so that
 * a flood of anonymous sign-ups from one address can neither fill libuv's thread pool nor make
 * another user's login wait behind it: past its share, a caller is refused RESOURCE_EXHAUSTED
 * with a retry delay.
 */
export function createPasswordHasher(options: PasswordHasherOptions = {}): PasswordHasher {
  const cost = 2 ** (options.cost ?? 15);
  const queue = createFairQueue({
    name: "password hashing",
    concurrency: options.queue?.concurrency ?? defaultHashConcurrency(),
    maxQueued: options.queue?.maxQueued ?? 64,
    perCaller: options.queue?.perCaller ?? 4,
  });
  const derive = (
    by: HashCaller,
    password: string,
    salt: Buffer,
    n: number,
    r: number,
    p: number,
  ) =>
    queue.run(
      by.caller,
      () =>
        new Promise<Buffer>((resolve, reject) =>
          scrypt(
            password.normalize("NFKC"),
            salt,
            keyLength,
            { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 },
            (err, key) => (err ? reject(err) : resolve(key)),
          ),
        ),
      by.signal,
    );
  const dummySalt = randomBytes(16);

  return {
    queue,
    async hash(password, by) {
      const salt = randomBytes(16);
      const key = await derive(by, password, salt, cost, blockSize, parallelization);
      return ["scrypt", cost, blockSize, parallelization, b64(salt), b64(key)].join("$");
    },
    async verify(password, encoded, by) {
      const parts = encoded.split("$");
      if (parts.length !== 6 || parts[0] !== "scrypt") return false;
      const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
      const salt = Buffer.from(parts[4] as string, "base64url");
      const expected = Buffer.from(parts[5] as string, "base64url");
      if (!(n > 1 && r > 0 && p > 0) || expected.length !== keyLength) return false;
      const key = await derive(by, password, salt, n, r, p);
      return timingSafeEqual(key, expected);
    },
    async waste(password, by) {
      await derive(by, password, dummySalt, cost, blockSize, parallelization);
    },
  };
}

/** Half the CPUs this process may run on (its affinity counts), at least 1, at most 4. */
export function defaultHashConcurrency(): number {
  return Math.max(1, Math.min(4, Math.floor(availableParallelism() / 2)));
}

function b64(buffer: Buffer): string {
  return buffer.toString("base64url");
}
