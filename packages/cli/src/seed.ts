import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createTransport, type Protocol, type TlsOptions } from "@keel/clients";
import {
  CheckpointStatus,
  type LineItemSchema,
  OrderService,
  OrderStatus,
  OrderStatusSchema,
} from "@keel/gen/order/v1/order_pb";
import { UserService, UserStatus } from "@keel/gen/user/v1/user_pb";
import { describeError } from "./describe-error.ts";
import { enumName } from "./enum-name.ts";
import { mintLocalToken } from "./local-token.ts";
import { createRetryWhenLimited } from "./retry-when-limited.ts";

export interface SeedOptions {
  baseUrl: string;
  protocol: Protocol;
  tls: TlsOptions | undefined;
  /**
   * A token with the roles `admin` and `fulfillment`, for shipping and suspending; when absent,
   * one is minted with the local configuration's key, as `keel token` does.
   */
  staffToken: string | undefined;
}

/** The password of every demo user. */
export const seedPassword = "correct horse battery";

type Item = MessageInitShape<typeof LineItemSchema>;
const item = (
  sku: string,
  name: string,
  quantity: number,
  currencyCode: string,
  amountMinor: bigint,
): Item => ({
  sku,
  name,
  quantity,
  unitPrice: { currencyCode, amountMinor },
});

/** What happens to an order after it is created. */
type Fate = "pending" | "paid" | "shipped" | "delivered" | "cancelled" | "refunded";

/** The demo data: who signs up, and the orders each places and what becomes of them. */
const people: {
  username: string;
  tags: string[];
  orders: { fate: Fate; items: Item[] }[];
}[] = [
  {
    username: "alan",
    tags: ["engineering", "early-adopter"],
    orders: [
      {
        fate: "delivered",
        items: [
          item("KEEL-MUG", "keel mug", 2, "USD", 1250n),
          item("KEEL-TEE", "keel t-shirt", 1, "USD", 1999n),
        ],
      },
      { fate: "pending", items: [item("KEEL-HOODIE", "keel hoodie", 1, "USD", 4900n)] },
    ],
  },
  {
    username: "barbara",
    tags: ["compilers"],
    orders: [
      { fate: "paid", items: [item("KEEL-STICKERS", "sticker pack", 3, "EUR", 450n)] },
      { fate: "cancelled", items: [item("KEEL-CAP", "keel cap", 1, "EUR", 1800n)] },
    ],
  },
  {
    username: "edsger",
    tags: ["kernel"],
    orders: [{ fate: "shipped", items: [item("KEEL-BOOK", "the keel book", 1, "GBP", 3200n)] }],
  },
  {
    username: "frances",
    tags: ["apollo"],
    orders: [{ fate: "refunded", items: [item("KEEL-POSTER", "launch poster", 2, "USD", 999n)] }],
  },
];

/** The user suspended by an administrator, for a status change in the activities. */
const suspended = "frances";

/**
 * Loads the demo data through the public API, as clients would: users (CreateUser, Login, an own
 * profile update), orders in every status (CreateOrder, PayOrder, ShipOrder, UpdateShipment,
 * CancelOrder), and an administrator's suspension, which together record every kind of activity.
 * Prints what it made; resolves to the exit code (1 when a call fails, saying which).
 */
export async function seed(options: SeedOptions): Promise<number> {
  const transport = createTransport(options);
  const users = createClient(UserService, transport);
  const orders = createClient(OrderService, transport);
  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
  const print = (line: string) => process.stdout.write(`${line}\n`);
  let doing = "";
  // Sign-ups and logins are limited per address (5 at once, then 10 a minute by default): on a
  // server where some were just made, wait as the server asks rather than fail halfway.
  const whenAllowed = createRetryWhenLimited({
    warn: (line) => process.stderr.write(`keel seed: ${line}\n`),
  });
  const made: { username: string; userId: bigint; statuses: OrderStatus[] }[] = [];
  try {
    let staff = options.staffToken;
    for (const person of people) {
      doing = `CreateUser ${person.username}`;
      const { user } = await whenAllowed(doing, () =>
        users.createUser({
          username: person.username,
          email: `${person.username}@example.com`,
          password: seedPassword,
          tags: person.tags,
        }),
      ).catch((err: unknown) => {
        if (ConnectError.from(err).code === Code.AlreadyExists) {
          throw new ConnectError(
            `user ${JSON.stringify(person.username)} already exists: this server has the demo data (or users of those names) already; seed a fresh database`,
            Code.AlreadyExists,
          );
        }
        throw err;
      });
      const userId = user?.userId ?? 0n;
      doing = `Login ${person.username}`;
      const { accessToken } = await whenAllowed(doing, () =>
        users.login({ username: person.username, password: seedPassword }),
      );
      const asUser = bearer(accessToken);
      doing = "minting a staff token";
      staff ??= await mintLocalToken(userId, ["admin", "fulfillment"]);
      const asStaff = bearer(staff);
      if (person.username === "edsger") {
        doing = "BatchUpdateUsers (edsger's own tags)";
        await users.batchUpdateUsers(
          (async function* () {
            yield { userId, user: { tags: ["kernel", "git"] }, updateMask: { paths: ["tags"] } };
          })(),
          asUser,
        );
      }
      const statuses: OrderStatus[] = [];
      for (const [n, planned] of person.orders.entries()) {
        const key = `seed-${person.username}-${n + 1}`;
        doing = `CreateOrder ${key}`;
        const { order } = await orders.createOrder(
          { userId, items: planned.items, idempotencyKey: key },
          asUser,
        );
        const orderId = order?.orderId ?? 0n;
        let status = order?.status ?? OrderStatus.UNSPECIFIED;
        if (planned.fate === "cancelled") {
          doing = `CancelOrder ${orderId}`;
          status =
            (await orders.cancelOrder({ orderId, reason: "changed my mind" }, asUser)).order
              ?.status ?? status;
        }
        if (planned.fate !== "pending" && planned.fate !== "cancelled") {
          doing = `PayOrder ${orderId}`;
          const paid = await orders.payOrder(
            { orderId, amount: order?.total, idempotencyKey: `${key}-pay` },
            asUser,
          );
          status = paid.order?.status ?? status;
        }
        if (planned.fate === "refunded") {
          doing = `CancelOrder ${orderId}`;
          status =
            (await orders.cancelOrder({ orderId, reason: "out of stock" }, asUser)).order?.status ??
            status;
        }
        if (planned.fate === "shipped" || planned.fate === "delivered") {
          doing = `ShipOrder ${orderId}`;
          const shipped = await orders.shipOrder(
            { orderId, carrier: "DHL", trackingNumber: `JD01460000${orderId}` },
            asStaff,
          );
          status = shipped.order?.status ?? status;
          doing = `UpdateShipment ${orderId}`;
          const delivered = planned.fate === "delivered";
          const reported = await orders.updateShipment(
            (async function* () {
              yield {
                orderId,
                checkpoint: { location: "Leipzig hub", status: CheckpointStatus.IN_TRANSIT },
              };
              if (!delivered) return;
              yield {
                orderId,
                checkpoint: { location: "Berlin", status: CheckpointStatus.OUT_FOR_DELIVERY },
              };
              yield {
                orderId,
                checkpoint: {
                  location: "front door",
                  status: CheckpointStatus.DELIVERED,
                  note: "handed over",
                },
              };
            })(),
            asStaff,
          );
          if (reported.errors.length > 0) throw new Error(reported.errors.join("; "));
          if (delivered) status = OrderStatus.DELIVERED;
        }
        statuses.push(status);
      }
      if (person.username === suspended) {
        doing = `BatchUpdateUsers (suspending ${suspended})`;
        await users.batchUpdateUsers(
          (async function* () {
            yield {
              userId,
              user: { status: UserStatus.SUSPENDED },
              updateMask: { paths: ["status"] },
            };
          })(),
          asStaff,
        );
      }
      made.push({ username: person.username, userId, statuses });
    }
  } catch (err) {
    process.stderr.write(`keel seed: ${doing} failed: ${describeError(err)}\n`);
    return 1;
  }
  print(
    `seeded ${options.baseUrl}: ${made.length} users, ${made.reduce((n, u) => n + u.statuses.length, 0)} orders`,
  );
  for (const { username, userId, statuses } of made) {
    const state = username === suspended ? " (suspended)" : "";
    const list = statuses.map((s) => enumName(OrderStatusSchema, s)).join(", ");
    print(
      `  ${`user ${userId}`.padEnd(8)} ${username.padEnd(9)}${state.padEnd(12)} orders: ${list}`,
    );
  }
  print(
    `  every user's password is "${seedPassword}"; keel client and the console can log in as them`,
  );
  return 0;
}
