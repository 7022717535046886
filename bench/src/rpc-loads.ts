import { type Client, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { type Order, OrderService } from "@keel/gen/order/v1/order_pb";
import { UserService } from "@keel/gen/user/v1/user_pb";
import type { LoadContext, LoadOutcome } from "./scenarios.ts";
import { summarizeLatencies } from "./stats.ts";

/**
 * A closed loop of `inFlight` callers, each making its next call as its last one ends, for
 * `seconds` (or until `call` returns false: nothing left to do). Calls are made from this
 * process: for writes whose every request differs (new names, the next order to pay), which
 * h2load, posting one body, cannot make.
 */
export async function closedLoop(options: {
  seconds: number;
  inFlight: number;
  /** Makes call number `n`; resolves false when there is nothing left to call. */
  call: (n: number) => Promise<boolean>;
  onMeasuring?: (() => void) | undefined;
}): Promise<LoadOutcome> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let next = 0;
  options.onMeasuring?.();
  const started = performance.now();
  const end = started + options.seconds * 1000;
  const caller = async () => {
    while (performance.now() < end) {
      const at = performance.now();
      try {
        if (!(await options.call(next++))) return;
        latencies.push(performance.now() - at);
      } catch (err) {
        errors++;
        firstError ??= err instanceof ConnectError ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: options.inFlight }, caller));
  const seconds = (performance.now() - started) / 1000;
  return {
    rate: latencies.length / seconds,
    completed: latencies.length,
    latencyMs: summarizeLatencies(latencies),
    errors,
    ...(firstError === undefined ? {} : { firstError }),
  };
}

/** Clients of one server, with the benchmark's admin credentials on every call. */
export interface BenchClients {
  users: Client<typeof UserService>;
  orders: Client<typeof OrderService>;
  headers: { authorization: string };
}

export function benchClients(port: number, authorization: string): BenchClients {
  const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` });
  return {
    users: createClient(UserService, transport),
    orders: createClient(OrderService, transport),
    headers: { authorization },
  };
}

/** The request of CreateOrder the benchmark makes: two items, no idempotency key. */
export function orderRequest(userId: bigint) {
  const price = (amountMinor: bigint) => ({ currencyCode: "EUR", amountMinor });
  return {
    userId,
    items: [
      { sku: "BENCH-1", name: "Bench item", quantity: 2, unitPrice: price(1250n) },
      { sku: "BENCH-2", name: "Another bench item", quantity: 1, unitPrice: price(399n) },
    ],
  };
}

/**
 * Loads of the write methods on one server, sharing what they make: CreateOrder's orders are
 * PayOrder's.
 */
export function writeLoads(options: { inFlight: number; clients: BenchClients; userId: bigint }) {
  const unpaid: Order[] = [];
  const { users, orders, headers } = options.clients;
  const run = `${process.pid}-${Date.now().toString(36)}`;
  let names = 0;
  const loop = (ctx: LoadContext, call: () => Promise<boolean>) =>
    closedLoop({
      seconds: ctx.warmup ? ctx.plan.warmupSeconds : ctx.plan.unarySeconds,
      inFlight: options.inFlight,
      onMeasuring: ctx.startMeasuring,
      call,
    });
  return {
    /** CreateUser with a fresh name each call (the password hash at the server's configured cost). */
    createUser: (ctx: LoadContext) =>
      loop(ctx, async () => {
        const name = `b${run}-${names++}`;
        await users.createUser(
          { username: name, email: `${name}@example.com`, password: "bench-password-1" },
          { headers },
        );
        return true;
      }),
    /** CreateOrder of two items for the benchmark's user; the orders are kept for PayOrder. */
    createOrder: (ctx: LoadContext) =>
      loop(ctx, async () => {
        const { order } = await orders.createOrder(orderRequest(options.userId), { headers });
        if (order !== undefined) unpaid.push(order);
        return true;
      }),
    /** PayOrder of the orders CreateOrder made, each once, until none is left. */
    payOrder: (ctx: LoadContext) =>
      loop(ctx, async () => {
        const order = unpaid.pop();
        if (order === undefined) return false;
        await orders.payOrder(
          { orderId: order.orderId, amount: order.total, idempotencyKey: `pay-${order.orderId}` },
          { headers },
        );
        return true;
      }),
  };
}
