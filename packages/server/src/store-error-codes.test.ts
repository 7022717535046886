import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  createOrderClient,
  createUserClient,
  type OrderClient,
  type Protocol,
  type UserClient,
} from "@keel/clients";
import { type Store, StoreError } from "@keel/store";
import { pino } from "pino";
import { mintToken, startTestServer, type TestServer } from "./testing/test-server.ts";

/** The access log's lines, as pino wrote them. */
const lines: Record<string, unknown>[] = [];
const logger = pino(
  { level: "debug" },
  {
    write(line: string) {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  },
);
const pinoLevels: Record<number, string> = { 20: "debug", 30: "info", 40: "warn", 50: "error" };

// Users whose reads fail the way a struggling database makes them fail.
const unavailableUser = 7_000_001n;
const unavailableOrder = 7_000_002n;
let overflowingUser = -1n;

/** `read`, failing with a store error of `kind` when asked about the id `failing()` names. */
function failsFor<A extends unknown[], T>(
  read: (id: bigint, ...rest: A) => Promise<T>,
  failing: () => bigint,
  kind: "unavailable" | "overflow",
) {
  return (id: bigint, ...rest: A) =>
    id === failing()
      ? Promise.reject(new StoreError(kind, `${kind} on purpose`))
      : read(id, ...rest);
}

let server: TestServer;
before(async () => {
  server = await startTestServer({
    logger,
    // Each call's own access-log line is checked: no refusal is summarised into a count.
    refusalSummaryIntervalMs: 0,
    wrapStore: (store: Store) =>
      Object.assign(Object.create(store) as Store, {
        users: {
          ...store.users,
          get: failsFor(store.users.get, () => unavailableUser, "unavailable"),
          // Text the database refuses, should any get past validation.
          create: (user: Parameters<Store["users"]["create"]>[0]) =>
            user.username === "refused_by_db"
              ? Promise.reject(new StoreError("invalid_argument", "text the database refuses"))
              : store.users.create(user),
        },
        orders: {
          ...store.orders,
          get: failsFor(store.orders.get, () => unavailableOrder, "unavailable"),
        },
        activities: {
          ...store.activities,
          list: failsFor(store.activities.list, () => overflowingUser, "overflow"),
        },
      }),
  });
});
after(() => server.stop());

async function handledTotal(labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${server.adminPort}/metrics`)).text();
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split("\n")) {
    if (!line.startsWith("grpc_server_handled_total{")) continue;
    const have = line.slice(line.indexOf("{") + 1, line.indexOf("}")).split(",");
    if (wanted.every((w) => have.includes(w)) && have.length === wanted.length) {
      return Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return 0;
}

interface Case {
  kind: string;
  service: string;
  method: string;
  type: "unary" | "server_stream";
  code: Code;
  level: string;
  /** Call as a user without roles, whose access to an order is looked up; default admin. */
  asPlainUser?: boolean;
  call: (clients: { users: UserClient; orders: OrderClient }) => Promise<unknown>;
}

const password = "correct horse battery";
let seq = 0;
const items = [
  { sku: "S", name: "Sock", quantity: 1, unitPrice: { currencyCode: "EUR", amountMinor: 100n } },
];

const cases: Case[] = [
  {
    kind: "already_exists",
    service: "user.v1.UserService",
    method: "CreateUser",
    type: "unary",
    code: Code.AlreadyExists,
    level: "info",
    call: async ({ users }) => {
      const username = `twice${++seq}`;
      await users.createUser({ username, email: `${username}@example.com`, password });
      return users.createUser({ username, email: `other${username}@example.com`, password });
    },
  },
  {
    kind: "not_found",
    service: "order.v1.OrderService",
    method: "CancelOrder",
    type: "unary",
    code: Code.NotFound,
    level: "info",
    call: ({ orders }) => orders.cancelOrder({ orderId: 9_000_000n + BigInt(++seq) }),
  },
  {
    kind: "failed_precondition",
    service: "order.v1.OrderService",
    method: "CancelOrder",
    type: "unary",
    code: Code.FailedPrecondition,
    level: "info",
    call: async ({ users, orders }) => {
      const username = `buyer${++seq}`;
      const { user } = await users.createUser({
        username,
        email: `${username}@example.com`,
        password,
      });
      const { order } = await orders.createOrder({ userId: user?.userId ?? 0n, items });
      await orders.cancelOrder({ orderId: order?.orderId ?? 0n });
      return orders.cancelOrder({ orderId: order?.orderId ?? 0n });
    },
  },
  {
    kind: "invalid_argument",
    service: "user.v1.UserService",
    method: "CreateUser",
    type: "unary",
    code: Code.InvalidArgument,
    level: "info",
    call: ({ users }) =>
      users.createUser({ username: "refused_by_db", email: "refused@example.com", password }),
  },
  {
    kind: "unavailable",
    service: "user.v1.UserService",
    method: "GetUser",
    type: "unary",
    code: Code.Unavailable,
    level: "warn",
    call: ({ users }) => users.getUser({ userId: unavailableUser }),
  },
  {
    kind: "unavailable (the order's owner looked up by authorization)",
    service: "order.v1.OrderService",
    method: "GetOrder",
    type: "unary",
    code: Code.Unavailable,
    level: "warn",
    asPlainUser: true,
    call: ({ orders }) => orders.getOrder({ orderId: unavailableOrder }),
  },
  {
    kind: "overflow",
    service: "user.v1.UserService",
    method: "StreamUserActivities",
    type: "server_stream",
    code: Code.ResourceExhausted,
    level: "info",
    call: async ({ users }) => {
      for await (const _ of users.streamUserActivities({ userId: overflowingUser })) break;
    },
  },
];

describe("store errors: the client, the metrics and the access log see one code", () => {
  before(async () => {
    const users = createUserClient({ baseUrl: server.url, token: server.adminToken });
    const { user } = await users.createUser({
      username: "overflowing",
      email: "overflowing@example.com",
      password,
    });
    overflowingUser = user?.userId ?? 0n;
  });

  const protocols: Protocol[] = ["grpc", "grpc-web", "connect"];
  for (const protocol of protocols) {
    for (const c of cases) {
      it(`${c.kind} from ${c.method} over ${protocol} → ${Code[c.code]} everywhere`, async () => {
        // No retries: each call is one attempt, counted once.
        const options = {
          baseUrl: server.url,
          protocol,
          token: c.asPlainUser === true ? await mintToken("12345") : server.adminToken,
          retry: false as const,
        };
        const clients = { users: createUserClient(options), orders: createOrderClient(options) };
        const labels = {
          grpc_type: c.type,
          grpc_service: c.service,
          grpc_method: c.method,
          grpc_code: Code[c.code],
        };
        const internal = { ...labels, grpc_code: "Internal" };
        const before = await handledTotal(labels);
        const internalBefore = await handledTotal(internal);
        const from = lines.length;
        const err = await c.call(clients).then(
          () => undefined,
          (e: unknown) => ConnectError.from(e),
        );
        assert.equal(err === undefined ? "OK" : Code[err.code], Code[c.code], err?.message);
        assert.equal(await handledTotal(labels), before + 1);
        assert.equal(await handledTotal(internal), internalBefore);
        const logged = lines
          .slice(from)
          .filter((l) => l.msg === "finished call" && l.method === `${c.service}/${c.method}`)
          .at(-1);
        assert.ok(logged, "an access log line");
        assert.equal(logged.code, Code[c.code]);
        assert.equal(pinoLevels[logged.level as number], c.level);
        assert.equal(logged.protocol, protocol);
        // Nothing was reported as unexpected.
        assert.ok(!lines.slice(from).some((l) => l.msg === "unexpected error in handler"));
      });
    }
  }
});
