import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GetOrderRequestSchema, ListOrdersRequestSchema } from "@keel/gen/order/v1/order_pb";
import { GetUserRequestSchema } from "@keel/gen/user/v1/user_pb";
import { grpcFrame } from "./grpc-frame.ts";
import { prepareKeel } from "./keel-setup.ts";
import {
  dropPgSchema,
  type PgBackends,
  watchPgBackends,
  withApplicationName,
} from "./pg-backends.ts";
import { type BenchClients, benchClients, orderRequest } from "./rpc-loads.ts";
import { type RunningTarget, startKeel } from "./targets.ts";

export type StoreKind = "sqlite" | "postgres";

/** Our server on one store, prepared for the store benchmarks. */
export interface StoreTarget {
  label: string;
  store: StoreKind;
  target: RunningTarget;
  authorization: string;
  userId: bigint;
  clients: BenchClients;
  /** The seeded users (the benchmark's own first) and orders. */
  userIds: bigint[];
  orderIds: bigint[];
  /** Request files (one gRPC message each) of the read methods. */
  bodies: { getUser: string; getOrder: string; listOrders: string };
  /** The PostgreSQL backends serving it; undefined on SQLite. */
  backends: PgBackends | undefined;
  /** The settings it runs with (another instance on the same database starts with these). */
  env: Record<string, string>;
  main: string;
  /** Stops the server and drops its PostgreSQL schema. */
  close(): Promise<void>;
}

/** ListOrders reads a page of this many orders. */
export const pageSize = 100;
/** Users and orders made before measuring, so that reads can ask for a different one each call. */
export const seeded = 1000;

/**
 * Starts our server (`main`) on `store`, pinned to `cpu`: a data directory or a PostgreSQL schema
 * of its own, the benchmark's admin user with `seeded` orders, `seeded` more users, the password
 * cost at its
 * lowest (10) and the per-caller limits on CreateUser and password hashing lifted, so that
 * CreateUser measures the store rather than the hash queue. Its PostgreSQL connections carry an
 * `application_name` of their own, so the backends serving it can be told apart.
 */
export async function startStoreTarget(options: {
  label: string;
  store: StoreKind;
  main: string;
  workDir: string;
  cpu: number | undefined;
  databaseUrl: string;
  poolSize?: number | undefined;
  nodeFlags?: string[];
  /** Seed the users and orders the reads ask for; default true. */
  seed?: boolean;
}): Promise<StoreTarget> {
  const count = options.seed === false ? 0 : seeded;
  const slug = options.label.replace(/[^\w]+/g, "-");
  const dataDir = join(options.workDir, slug);
  const applicationName = `keel-bench-${slug}-${randomBytes(3).toString("hex")}`;
  const schema = `keel_bench_${randomBytes(6).toString("hex")}`;
  const postgres = options.store === "postgres";
  const env: Record<string, string> = {
    KEEL_PASSWORD_COST: "10",
    KEEL_PASSWORD_HASH_MAX_QUEUED: "100000",
    KEEL_PASSWORD_HASH_PER_CLIENT: "100000",
    KEEL_CREATE_USER_RATE_LIMIT_PER_MINUTE: "100000000",
    KEEL_CREATE_USER_RATE_LIMIT_BURST: "100000000",
    KEEL_STREAM_LIMIT_PER_PRINCIPAL: "100000",
    KEEL_STREAM_LIMIT_PER_ADDRESS: "100000",
    ...(postgres
      ? {
          KEEL_DATABASE_URL: withApplicationName(options.databaseUrl, applicationName),
          KEEL_DATABASE_SCHEMA: schema,
        }
      : {}),
    ...(postgres && options.poolSize !== undefined
      ? { KEEL_DATABASE_POOL_SIZE: String(options.poolSize) }
      : {}),
  };
  const setup = await prepareKeel({
    main: options.main,
    dataDir,
    logFile: join(options.workDir, `${slug}-setup.log`),
    updates: 0,
    env,
  });
  const dropSchema = () =>
    postgres ? dropPgSchema(options.databaseUrl, schema) : Promise.resolve();
  let target: RunningTarget | undefined;
  let backends: PgBackends | undefined;
  try {
    target = await startKeel({
      main: options.main,
      env: setup.env,
      cpu: options.cpu,
      logFile: join(options.workDir, `${slug}.log`),
      ...(options.nodeFlags === undefined ? {} : { nodeFlags: options.nodeFlags }),
    });
    const clients = benchClients(target.port, setup.authorization);
    const orderIds: bigint[] = [];
    const userIds: bigint[] = [setup.userId];
    const { headers } = clients;
    await inBatches(count, 50, async () => {
      const { order } = await clients.orders.createOrder(orderRequest(setup.userId), { headers });
      if (order === undefined) throw new Error("CreateOrder returned no order");
      orderIds.push(order.orderId);
    });
    await inBatches(count - 1, 50, async (i) => {
      const name = `reader${i}`;
      const { user } = await clients.users.createUser({
        username: name,
        email: `${name}@example.com`,
        password: "bench-password-1",
      });
      if (user === undefined) throw new Error("CreateUser returned no user");
      userIds.push(user.userId);
    });
    const body = async (name: string, frame: Uint8Array) => {
      const file = join(options.workDir, `${slug}-${name}.bin`);
      await writeFile(file, frame);
      return file;
    };
    const bodies = {
      getUser: await body("get-user", grpcFrame(GetUserRequestSchema, { userId: setup.userId })),
      getOrder: await body(
        "get-order",
        grpcFrame(GetOrderRequestSchema, { orderId: orderIds[0] ?? 1n }),
      ),
      listOrders: await body(
        "list-orders",
        grpcFrame(ListOrdersRequestSchema, { userId: setup.userId, pageSize }),
      ),
    };
    backends = postgres ? await watchPgBackends(options.databaseUrl, applicationName) : undefined;
    const running = target;
    const watching = backends;
    return {
      label: options.label,
      store: options.store,
      target: running,
      authorization: setup.authorization,
      userId: setup.userId,
      clients,
      userIds,
      orderIds,
      bodies,
      backends: watching,
      env: setup.env,
      main: options.main,
      async close() {
        await running.stop();
        await watching?.close();
        await dropSchema();
      },
    };
  } catch (err) {
    await target?.stop();
    await backends?.close();
    await dropSchema();
    throw err;
  }
}

/** Calls `make(0 … count-1)`, `width` at a time. */
async function inBatches(
  count: number,
  width: number,
  make: (i: number) => Promise<void>,
): Promise<void> {
  for (let start = 0; start < count; start += width) {
    const batch = Array.from({ length: Math.min(width, count - start) }, (_, i) => make(start + i));
    await Promise.all(batch);
  }
}

/** A counter of our server's /metrics (summed over its series), or NaN when it has none. */
export function counterValue(metrics: string, name: string): number {
  let total = Number.NaN;
  for (const line of metrics.split("\n")) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) {
      total = (Number.isNaN(total) ? 0 : total) + Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return total;
}
