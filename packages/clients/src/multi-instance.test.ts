import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { durationMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { RetryInfoSchema } from "@keel/gen/errdetails/v1/errdetails_pb";
import { OrderService } from "@keel/gen/order/v1/order_pb";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { createClientTransport } from "./client-transport.ts";
import { createOrderClient } from "./order-client.ts";
import { dropSchema, freshSchema, postgresSkipReason, postgresUrl } from "./testing/postgres.ts";
import { mintToken, type ServerProcess, startServerProcess } from "./testing/server-process.ts";
import { createUserClient } from "./user-client.ts";

// Three keel server processes share one PostgreSQL database, so any of them can answer any call.
// Skipped only outside CI when no PostgreSQL is reachable; in CI that is a failure.
const skip = await postgresSkipReason();

const items = [
  { sku: "S", name: "Sock", quantity: 2, unitPrice: { currencyCode: "EUR", amountMinor: 300n } },
];

describe("three server instances on one PostgreSQL database", { skip: skip ?? false }, () => {
  const schema = freshSchema();
  let servers: ServerProcess[] = [];
  let token = "";
  let userId = 0n;
  let seedOrderId = 0n;
  const configDir = mkdtempSync(join(tmpdir(), "keel-clients-config-"));

  before(async () => {
    // ListUsers is limited to 2 calls a second per caller, for the rate-limit test; nothing else is.
    const config = join(configDir, "keel.yaml");
    writeFileSync(
      config,
      [
        "rateLimits:",
        "  ratePerSecond: 100000",
        "  burst: 100000",
        "  methods:",
        '    "user.v1.UserService/ListUsers": { ratePerSecond: 2, burst: 1 }',
        "",
      ].join("\n"),
    );
    const env = {
      KEEL_CONFIG: config,
      KEEL_DATABASE_URL: postgresUrl,
      KEEL_DATABASE_SCHEMA: schema,
      KEEL_DATABASE_POOL_SIZE: "4",
    };
    // The first instance creates the schema; the others start once it is there.
    const first = await startServerProcess(env);
    const rest = await Promise.all([startServerProcess(env), startServerProcess(env)]);
    servers = [first, ...rest];
    token = await mintToken(["admin"]);
    const direct = { baseUrl: first.url, token };
    const { user } = await createUserClient(direct).createUser({
      username: "roundrobin",
      email: "roundrobin@example.com",
      password: "correct horse battery",
    });
    userId = user?.userId ?? 0n;
    const { order } = await createOrderClient(direct).createOrder({ userId, items });
    seedOrderId = order?.orderId ?? 0n;
  });

  after(async () => {
    await Promise.all(servers.map((s) => s.kill()));
    await dropSchema(schema);
    rmSync(configDir, { recursive: true, force: true });
  });

  it("loses no idempotent call of a round_robin run when an instance is killed", async () => {
    // One transport for both services: keel serves them on one port.
    const transport = createClientTransport({
      endpoints: servers.map((s) => s.url),
      balancing: "round_robin",
      token,
    });
    const users = createClient(UserService, transport);
    const orders = createClient(OrderService, transport);
    const keys: string[] = [];
    let next = 0;
    // Unary calls only: a server stream that dies after its first message cannot be retried
    // (its messages were handed over already); retry.test.ts covers streams that die before.
    const call = async (i: number) => {
      switch (i % 4) {
        case 0:
          assert.equal((await users.getUser({ userId })).user?.userId, userId);
          return;
        case 1: {
          const { order } = await orders.getOrder({ orderId: seedOrderId });
          assert.equal(order?.orderId, seedOrderId);
          return;
        }
        case 2:
          assert.ok((await orders.listOrders({ userId })).orders.length >= 1);
          return;
        default: {
          const idempotencyKey = `run-${i}`;
          const { order } = await orders.createOrder({ userId, items, idempotencyKey });
          assert.equal(order?.userId, userId);
          keys.push(idempotencyKey);
        }
      }
    };
    const failures: string[] = [];
    let done = 0;
    const run = (until: number) =>
      Promise.all(
        Array.from({ length: 8 }, async () => {
          while (done < until) {
            const i = next++;
            await call(i).catch((err: unknown) => failures.push(`call ${i}: ${String(err)}`));
            done++;
          }
        }),
      );

    await run(150);
    const before = transport.endpoints();
    assert.ok(
      before.every((e) => e.calls >= 30),
      `every instance took calls: ${before.map((e) => e.calls).join(", ")}`,
    );
    // SIGKILL while the run goes on: calls in flight on the instance die with their connection.
    const victim = servers[1] as ServerProcess;
    const running = run(500);
    while (done < 200) await new Promise((resolve) => setTimeout(resolve, 1));
    await victim.kill();
    await running;

    assert.deepEqual(failures, []);
    const endpoints = transport.endpoints();
    assert.equal(endpoints[1]?.available, false, "the killed instance left the rotation");
    // Why: its connection broke (a reset, or streams closed with it) and its health Watch failed.
    assert.match(
      endpoints[1]?.reason ?? "",
      /ECONNRESET|ECONNREFUSED|stream closed|health Watch failed/,
    );
    const [first = 0, , third = 0] = endpoints.map((e, i) => e.calls - (before[i]?.calls ?? 0));
    assert.ok(first >= 100 && third >= 100, `the others took the rest: ${first}, ${third}`);
    // A retried CreateOrder with a key made one order, not two.
    const { orders: all } = await orders.listOrders({ userId, pageSize: 1000 });
    assert.equal(all.length, keys.length + 1);
    transport.close();
  });

  it("retries a write with an idempotency key on another instance, never one without", async () => {
    // A stopped instance takes both calls and never answers; then it is killed, resetting the
    // connection: the server may have seen the requests, so only the keyed write may go again.
    const stopped = servers[2] as ServerProcess;
    const live = servers[0] as ServerProcess;
    const orders = createOrderClient({
      endpoints: [stopped.url, live.url],
      balancing: "pick_first",
      token,
    });
    await orders.getOrder({ orderId: seedOrderId }); // connected to the first endpoint
    process.kill(-(stopped.child.pid as number), "SIGSTOP");
    const unkeyed = orders.createOrder({ userId, items }).then(
      () => "ok",
      (err: unknown) => ConnectError.from(err),
    );
    const keyed = orders.createOrder({ userId, items, idempotencyKey: "stopped-1" });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await stopped.kill();

    const error = await unkeyed;
    assert.ok(error instanceof ConnectError, "the write without a key failed");
    assert.equal(error.code, Code.Unavailable);
    // The reset reaches the client as a reset socket, or as its streams closed with CANCEL.
    assert.match(
      error.rawMessage,
      new RegExp(`^${stopped.url}: (read ECONNRESET|http/2 stream closed)`),
    );
    const { order } = await keyed;
    assert.equal(order?.userId, userId, "the keyed write went to the live instance");
    const again = await orders.createOrder({ userId, items, idempotencyKey: "stopped-1" });
    assert.equal(again.order?.orderId, order?.orderId);
  });

  it("waits out the real server's rate limit for the delay it names, when asked to", async () => {
    const server = servers[0] as ServerProcess;
    const plain = createUserClient({ baseUrl: server.url, token });
    await plain.listUsers({}).catch(() => {});
    const refused = await plain.listUsers({}).then(
      () => undefined,
      (err: unknown) => ConnectError.from(err),
    );
    assert.equal(refused?.code, Code.ResourceExhausted, "not retried by default");
    const [info] = refused?.findDetails(RetryInfoSchema) ?? [];
    assert.ok(info?.retryDelay !== undefined && durationMs(info.retryDelay) > 0);

    const patient = createUserClient({
      baseUrl: server.url,
      token,
      retry: { codes: [Code.Unavailable, Code.ResourceExhausted] },
    });
    const started = Date.now();
    for (let i = 0; i < 3; i++) await patient.listUsers({});
    const elapsed = Date.now() - started;
    // Two calls a second with a burst of one: three calls need at least about a second.
    assert.ok(elapsed >= 700, `three calls took ${elapsed} ms`);
  });
});
