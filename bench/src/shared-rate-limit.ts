/**
 * What a shared rate limit costs per call: the rate limit interceptor with local buckets only,
 * and with buckets shared through PostgreSQL (openPostgresTokenBuckets) at several batch sizes,
 * measured in alternating rounds in one process against the PostgreSQL of KEEL_TEST_DATABASE_URL
 * (default postgres://postgres@127.0.0.1:5432/test; a fresh schema, dropped at the end).
 *
 *   ./dev node --conditions=source bench/src/shared-rate-limit.ts [--callers 50] [--calls 200]
 *     [--rounds 4] [--batches 1,10,50] [--pool 4]
 *
 * Each round makes `calls` calls for each of `callers` callers (each its own bucket), one caller's
 * calls one after another and the callers side by side, through the interceptor alone (its next
 * is an answered promise): no transport, so the figures are the limiter's. It prints, per
 * variant, the median over rounds of: CPU µs per call of this process, wall µs per call, the
 * p50/p99 time a call waited in the limiter, and database round trips per call.
 */
import { parseArgs } from "node:util";
import { createContextValues, type Interceptor } from "@connectrpc/connect";
import { UserService } from "@keel/gen/user/v1/user_pb";
import {
  createRateLimiter,
  createSharedBuckets,
  principalKey,
  type TokenSource,
} from "@keel/interceptors";
import { openPostgresTokenBuckets } from "@keel/store";
import { dropSchema, freshSchema, postgresUrl } from "@keel/store/testing";
import { median, percentile } from "./stats.ts";

const { values } = parseArgs({
  options: {
    callers: { type: "string", default: "50" },
    calls: { type: "string", default: "200" },
    rounds: { type: "string", default: "4" },
    batches: { type: "string", default: "1,10,50" },
    pool: { type: "string", default: "4" },
  },
});
const callers = Number(values.callers);
const calls = Number(values.calls);
const rounds = Number(values.rounds);
const batches = values.batches.split(",").map(Number);

const schema = freshSchema();
const buckets = await openPostgresTokenBuckets({
  connectionString: postgresUrl,
  schema,
  poolSize: Number(values.pool),
});
let roundTrips = 0;
const counted: TokenSource = {
  take(key, limit, count) {
    roundTrips++;
    return buckets.take(key, limit, count);
  },
};
// Roomy enough that nobody is refused: the cost of checking, not of refusing, is measured.
const limits = { default: { ratePerSecond: 1e9, burst: 1e9 } };
const variants: { name: string; interceptor: Interceptor }[] = [
  { name: "local", interceptor: createRateLimiter({ limits }).interceptor },
  ...batches.map((maxBatch) => ({
    name: `shared, batch ${maxBatch}`,
    interceptor: createRateLimiter({
      limits,
      shared: createSharedBuckets({ source: counted, maxBatch, timeoutMs: 1000 }),
    }).interceptor,
  })),
];

const method = UserService.method.getUser;
const principals = Array.from({ length: callers }, (_, i) => ({
  subject: `caller-${i}`,
  userId: undefined,
  roles: [],
  tokenId: undefined,
}));

interface Round {
  cpuUs: number;
  wallUs: number;
  waits: number[];
  tripsPerCall: number;
}

async function round(interceptor: Interceptor, n: number): Promise<Round> {
  const waits: number[] = [];
  // Each caller's request carries when its current call began; next sees how long it waited.
  const next = ((req: { begin: number }) => {
    waits.push(performance.now() - req.begin);
    return Promise.resolve({});
  }) as unknown as Parameters<Interceptor>[0];
  const call = interceptor(next);
  const trips = roundTrips;
  const cpu = process.cpuUsage();
  const wall = performance.now();
  await Promise.all(
    principals.map(async (principal) => {
      const contextValues = createContextValues().set(principalKey, principal);
      const req = { method, contextValues, begin: 0 };
      for (let i = 0; i < n; i++) {
        req.begin = performance.now();
        await call(req as unknown as Parameters<typeof call>[0]);
      }
    }),
  );
  const used = process.cpuUsage(cpu);
  const total = n * principals.length;
  return {
    cpuUs: (used.user + used.system) / total,
    wallUs: ((performance.now() - wall) * 1000) / total,
    waits: waits.sort((a, b) => a - b),
    tripsPerCall: (roundTrips - trips) / total,
  };
}

try {
  // Warm up every variant (and fill the buckets' rows) before measuring.
  for (const variant of variants) await round(variant.interceptor, 20);
  const results = new Map<string, Round[]>(variants.map((v) => [v.name, []]));
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? variants : [...variants].reverse();
    for (const variant of order) {
      const result = await round(variant.interceptor, calls);
      results.get(variant.name)?.push(result);
      console.log(
        `round ${r + 1} ${variant.name.padEnd(16)} ${result.cpuUs.toFixed(2)} µs CPU/call, ` +
          `${result.tripsPerCall.toFixed(3)} round trips/call`,
      );
    }
  }
  console.log(
    `\n${callers} callers × ${calls} calls per round, ${rounds} rounds, ${values.pool} connections to PostgreSQL at ${new URL(postgresUrl).host}; medians:`,
  );
  console.log(
    "| variant          | CPU µs/call | wall µs/call | wait p50 µs | wait p99 µs | round trips/call |",
  );
  console.log(
    "| ---------------- | ----------- | ------------ | ----------- | ----------- | ---------------- |",
  );
  for (const [name, list] of results) {
    const med = (pick: (r: Round) => number) => median(list.map(pick));
    console.log(
      `| ${name.padEnd(16)} | ${med((r) => r.cpuUs)
        .toFixed(2)
        .padStart(11)} | ${med((r) => r.wallUs)
        .toFixed(2)
        .padStart(12)} | ${med((r) => percentile(r.waits, 50) * 1000)
        .toFixed(1)
        .padStart(11)} | ${med((r) => percentile(r.waits, 99) * 1000)
        .toFixed(1)
        .padStart(11)} | ${med((r) => r.tripsPerCall)
        .toFixed(3)
        .padStart(16)} |`,
    );
  }
} finally {
  await buckets.close();
  await dropSchema(schema);
}
