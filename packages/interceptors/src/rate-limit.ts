import type { DescMethod } from "@bufbuild/protobuf";
import type { ConnectError, Interceptor } from "@connectrpc/connect";
import { type Principal, peerKey, principalKey } from "./context.ts";
import { perMethod } from "./per-method.ts";
import { resourceExhausted } from "./resource-exhausted.ts";
import type { SharedBuckets, SharedVerdict } from "./shared-buckets.ts";

/** A token bucket: it holds up to `burst` tokens and refills at `ratePerSecond`. */
export interface Limit {
  /** Sustained rate: tokens added per second. Must be greater than 0. */
  ratePerSecond: number;
  /** Bucket size: how many calls may arrive at once after a quiet period. At least 1. */
  burst: number;
}

/** The limits of every method: its own entry if it has one, otherwise `default`. */
export interface RateLimits {
  /** The limit of every method without an entry in `methods`. */
  default: Limit;
  /**
   * Limits by method, keyed as "package.Service/Method", e.g. "user.v1.UserService/Login".
   * Default: none.
   */
  methods?: Record<string, Limit>;
}

/**
 * What a bucket belongs to besides the method. "principal": the authenticated caller's subject,
 * or the peer address for anonymous calls. "peer": always the peer address.
 */
export type RateLimitKey = "peer" | "principal";

export interface RateLimitOptions {
  /** The limits; `RateLimiter.update` replaces them later. */
  limits: RateLimits;
  /**
   * How callers are told apart, by method ("package.Service/Method"). Default: "principal" for
   * every method. The server sets `{ "user.v1.UserService/Login": "peer" }`, together with a
   * stricter `limits.methods` entry for Login, so that login attempts are limited per address:
   * they are anonymous, and a caller holding a token must not get a fresh budget by sending it.
   */
  keyBy?: Record<string, RateLimitKey>;
  /**
   * The most buckets kept. When full, buckets that have refilled completely (idle) are dropped
   * first, then the oldest, down to 90% so that the sweep is amortized. Default: 100000.
   */
  maxKeys?: number;
  /**
   * Buckets shared by every instance and worker (`createSharedBuckets`): a caller's budget then
   * holds across all of them, at the cost of a round trip to the shared store every few calls.
   * The local buckets count calls while the store is unavailable. Default: local buckets only,
   * each process counting for itself.
   */
  shared?: SharedBuckets;
  /** Monotonic clock in milliseconds, for tests. Default: `performance.now`. */
  now?: () => number;
}

/** A rate limit interceptor whose limits can be replaced while it serves. */
export interface RateLimiter {
  interceptor: Interceptor;
  /**
   * Applies new limits to the next call of every method (a configuration reload). Buckets keep
   * their tokens, capped at the new burst, and refill at the new rate from now on.
   */
  update(limits: RateLimits): void;
  /** How many buckets are held, for monitoring; never more than `maxKeys`. */
  readonly size: number;
}

interface Rule {
  method: string;
  ratePerSecond: number;
  perMs: number;
  burst: number;
  byPeer: boolean;
}

interface Bucket {
  tokens: number;
  last: number;
  /** When the bucket will be full again, which makes it idle and the first to evict. */
  fullAt: number;
}

/**
 * Limits calls with a token bucket per caller and method (see `RateLimitOptions.keyBy`). A call
 * over the limit fails with RESOURCE_EXHAUSTED, a `RetryInfo` detail with the delay and a
 * `retry-after` header in whole seconds. A streaming call of any kind costs one token when it
 * starts; its messages are not limited. Place it after the authentication interceptor, which
 * sets the principal.
 */
export function createRateLimiter(options: RateLimitOptions): RateLimiter {
  const keyBy = options.keyBy ?? {};
  const maxKeys = options.maxKeys ?? 100_000;
  const now = options.now ?? (() => performance.now());
  const shared = options.shared;
  if (!Number.isInteger(maxKeys) || maxKeys < 1) {
    throw new RangeError(`maxKeys must be a positive integer, got ${maxKeys}`);
  }
  let limits = validate(options.limits);
  const buckets = new Map<string, Bucket>();
  // A principal's bucket key for each method, kept with the principal (the authentication
  // interceptor hands out the same object for every call with the same token): the key string is
  // built, and hashed, once.
  const principalKeys = new WeakMap<Principal, Map<string, string>>();
  const bucketKeyOf = (rule: Rule, principal: Principal): string => {
    let keys = principalKeys.get(principal);
    if (keys === undefined) {
      keys = new Map();
      principalKeys.set(principal, keys);
    }
    let key = keys.get(rule.method);
    if (key === undefined) {
      key = `${rule.method} user:${principal.subject}`;
      keys.set(rule.method, key);
    }
    return key;
  };

  const compileRule = (desc: DescMethod): Rule => {
    const method = `${desc.parent.typeName}/${desc.name}`;
    const limit = limits.methods?.[method] ?? limits.default;
    return {
      method,
      ...limit,
      perMs: limit.ratePerSecond / 1000,
      byPeer: keyBy[method] === "peer",
    };
  };
  // Rebuilt when the limits change.
  let ruleFor = perMethod(compileRule);

  // Buckets are never re-inserted, so the Map's order is creation order: "oldest" is cheap.
  const sweep = (t: number) => {
    for (const [key, bucket] of buckets) if (bucket.fullAt <= t) buckets.delete(key);
    const keep = Math.floor(maxKeys * 0.9);
    for (const key of buckets.keys()) {
      if (buckets.size <= keep) break;
      buckets.delete(key);
    }
  };

  // Not an async function: a call within its limit goes straight on, without a promise of its own.
  const interceptor: Interceptor = (next) => (req) => {
    const rule = ruleFor(req.method);
    const principal = rule.byPeer ? undefined : req.contextValues.get(principalKey);
    const key = principal
      ? bucketKeyOf(rule, principal)
      : `${rule.method} peer:${req.contextValues.get(peerKey)}`;
    if (shared !== undefined) {
      let verdict: SharedVerdict | Promise<SharedVerdict>;
      try {
        verdict = shared.take(key, rule);
      } catch (err) {
        return Promise.reject(err);
      }
      if (verdict === 0) return next(req);
      if (typeof verdict === "number") return Promise.reject(exhausted(rule, verdict));
      if (verdict instanceof Promise) {
        return verdict.then((later) => {
          if (later === 0) return next(req);
          if (later !== "local") throw exhausted(rule, later);
          return local(key, rule, () => next(req));
        });
      }
    }
    return local(key, rule, () => next(req));
  };

  /** The call, limited by this process's own bucket. */
  const local = <T>(key: string, rule: Rule, go: () => Promise<T>): Promise<T> => {
    const t = now();
    let bucket = buckets.get(key);
    if (bucket === undefined) {
      if (buckets.size >= maxKeys) sweep(t);
      bucket = { tokens: rule.burst, last: t, fullAt: t };
      buckets.set(key, bucket);
    }
    const waitMs = take(bucket, rule, t);
    if (waitMs > 0) return Promise.reject(exhausted(rule, waitMs));
    return go();
  };

  return {
    interceptor,
    update(next) {
      limits = validate(next);
      ruleFor = perMethod(compileRule);
    },
    get size() {
      return buckets.size;
    },
  };
}

/** `createRateLimiter` for limits that never change: just the interceptor. */
export function createRateLimitInterceptor(options: RateLimitOptions): Interceptor {
  return createRateLimiter(options).interceptor;
}

/** Refills the bucket up to `t` and takes a token; returns 0, or how long until one is there. */
function take(bucket: Bucket, rule: Rule, t: number): number {
  const tokens = Math.min(rule.burst, bucket.tokens + (t - bucket.last) * rule.perMs);
  bucket.last = t;
  // The tolerance absorbs floating-point error for a caller who waited exactly as told.
  if (tokens >= 1 - 1e-9) {
    bucket.tokens = Math.max(0, tokens - 1);
    bucket.fullAt = t + (rule.burst - bucket.tokens) / rule.perMs;
    return 0;
  }
  bucket.tokens = tokens;
  return (1 - tokens) / rule.perMs;
}

function exhausted(rule: Rule, waitMs: number): ConnectError {
  const seconds = (Math.ceil(waitMs / 100) / 10).toFixed(1);
  return resourceExhausted(
    `rate limit of ${rateText(rule.ratePerSecond)} for ${rule.method} exceeded; retry in ${seconds}s`,
    waitMs,
  );
}

/** "100 requests per second", or per minute below one a second: "10 requests per minute". */
export function rateText(ratePerSecond: number): string {
  const count = (n: number) => {
    const rounded = Number(n.toPrecision(3));
    return `${rounded} request${rounded === 1 ? "" : "s"}`;
  };
  return ratePerSecond >= 1
    ? `${count(ratePerSecond)} per second`
    : `${count(ratePerSecond * 60)} per minute`;
}

function validate(limits: RateLimits): RateLimits {
  const check = (name: string, limit: Limit) => {
    const { ratePerSecond, burst } = limit;
    if (!(ratePerSecond > 0 && burst >= 1 && Number.isFinite(ratePerSecond + burst))) {
      throw new RangeError(`rate limit for ${name} needs ratePerSecond > 0 and burst >= 1`);
    }
  };
  check("default", limits.default);
  for (const [method, limit] of Object.entries(limits.methods ?? {})) {
    if (!/^[\w.]+\/\w+$/.test(method)) {
      throw new RangeError(`rate limit method "${method}" is not of the form "pkg.Service/Method"`);
    }
    check(method, limit);
  }
  // A copy, so that only `update` changes the limits in force.
  return structuredClone(limits);
}
