import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createTransport, type Protocol, type TlsOptions } from "@keel/clients";
import {
  CheckpointStatus,
  OrderEventType,
  OrderService,
  OrderStatusSchema,
  type UpdateShipmentRequestSchema,
  type UpdateShipmentResponse,
} from "@keel/gen/order/v1/order_pb";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { describeMoney, describeOrderEvent, describeUser } from "./describe.ts";
import { describeError } from "./describe-error.ts";
import { enumName } from "./enum-name.ts";
import { mintLocalToken } from "./local-token.ts";
import { createRetryWhenLimited } from "./retry-when-limited.ts";

export interface WalkthroughOptions {
  baseUrl: string;
  protocol: Protocol;
  /** CA and client certificate for an https:// server, when given. */
  tls: TlsOptions | undefined;
  /** A token with the admin role; when absent, one is minted with the local configuration. */
  adminToken: string | undefined;
}

const password = "correct horse battery";

/**
 * CreateUser, Login, GetUser, ListUsers, CreateOrder, PayOrder, ShipOrder and TrackOrder (with
 * the carrier's UpdateShipment), each printed with its result on stdout. Resolves to the exit
 * code: 1 when a step fails, saying which and why on stderr.
 */
export async function walkthrough(options: WalkthroughOptions): Promise<number> {
  const { baseUrl, protocol, tls } = options;
  const transport = createTransport({ baseUrl, protocol, tls });
  const users = createClient(UserService, transport);
  const orders = createClient(OrderService, transport);
  const print = (line: string) => process.stdout.write(`${line}\n`);
  print(`walkthrough against ${options.baseUrl} (${options.protocol})`);
  const started = performance.now();
  let current = "";
  let stepNumber = 0;
  // A step prints its number, RPC and result, and how long it took. A streaming step prints an
  // introduction first, then what arrives, then its result.
  const step = async <T>(
    rpc: string,
    call: () => Promise<T>,
    result: (r: T) => string,
    intro?: string,
  ) => {
    current = rpc;
    const head = `${`${++stepNumber}.`.padStart(3)} ${rpc.padEnd(12)}`;
    if (intro !== undefined) print(`${head} ${intro}`);
    const t0 = performance.now();
    const value = await call();
    const took = `(${(performance.now() - t0).toFixed(1)} ms)`;
    print(`${intro === undefined ? head : "     →"} ${result(value)} ${took}`);
    return value;
  };
  let minted = false;
  // Sign-ups and logins are limited per address: wait as the server asks rather than fail.
  const whenAllowed = createRetryWhenLimited({
    warn: (line) => process.stderr.write(`keel client: ${line}\n`),
  });
  try {
    const name = `walkthrough-${randomBytes(4).toString("hex")}`;
    const { user } = await step(
      "CreateUser",
      () =>
        whenAllowed("CreateUser", () =>
          users.createUser({ username: name, email: `${name}@example.com`, password }),
        ),
      (r) => describeUser(r.user),
    );
    const userId = user?.userId ?? 0n;
    const login = await step(
      "Login",
      () => whenAllowed("Login", () => users.login({ username: name, password })),
      (r) => `access token for user ${r.userId} (${r.tokenType}, ${r.accessToken.length} chars)`,
    );
    const asUser = { headers: bearer(login.accessToken) };
    let adminToken = options.adminToken;
    if (adminToken === undefined) {
      adminToken = await mintLocalToken(userId, ["admin"]);
      minted = true;
      print(`    (admin token: minted for user ${userId} with the local configuration's key)`);
    }
    const asAdmin = { headers: bearer(adminToken) };
    await step(
      "GetUser",
      () => users.getUser({ userId }, asUser),
      (r) => `${describeUser(r.user)} (as the user)`,
    );
    await step(
      "ListUsers",
      () => users.listUsers({ pageSize: 5 }, asAdmin),
      (r) =>
        `${r.users.length} users on the first page: ${r.users.map((u) => `${u.userId} ${u.username}`).join(", ")}` +
        `${r.nextPageToken === "" ? "" : ", more on the next"} (as admin)`,
    );
    const { order } = await step(
      "CreateOrder",
      () =>
        orders.createOrder(
          {
            userId,
            idempotencyKey: `${name}-order`,
            items: [
              { sku: "KEEL-MUG", name: "keel mug", quantity: 2, unitPrice: usd(1250n) },
              { sku: "KEEL-TEE", name: "keel t-shirt", quantity: 1, unitPrice: usd(1999n) },
            ],
          },
          asUser,
        ),
      (r) =>
        `order ${r.order?.orderId} for user ${r.order?.userId}: ${r.order?.items.length} items, ` +
        `total ${describeMoney(r.order?.total)}, ${enumName(OrderStatusSchema, r.order?.status ?? 0)}`,
    );
    const orderId = order?.orderId ?? 0n;
    await step(
      "PayOrder",
      () =>
        orders.payOrder({ orderId, amount: order?.total, idempotencyKey: `${name}-pay` }, asUser),
      (r) =>
        `order ${orderId} ${enumName(OrderStatusSchema, r.order?.status ?? 0)}, payment ` +
        `${r.payment?.paymentId} of ${describeMoney(r.payment?.amount)}`,
    );
    await step(
      "ShipOrder",
      () =>
        orders.shipOrder(
          { orderId, carrier: "DHL", trackingNumber: `JD0146${userId}${orderId}` },
          asAdmin,
        ),
      (r) =>
        `order ${orderId} ${enumName(OrderStatusSchema, r.order?.status ?? 0)} with ` +
        `${r.order?.shipment?.carrier}, tracking ${r.order?.shipment?.trackingNumber} (as admin)`,
    );
    await step(
      "TrackOrder",
      () => track(orders, orderId, asUser, asAdmin, print),
      (events) => `the stream ended after ${events} events: order ${orderId} is delivered`,
      `order ${orderId}'s events so far, then live ones until it is delivered (as the user)`,
    );
    print(`done: ${stepNumber} steps in ${((performance.now() - started) / 1000).toFixed(2)} s`);
    return 0;
  } catch (err) {
    const error = ConnectError.from(err);
    process.stderr.write(`keel client: ${current} failed: ${describeError(error)}\n`);
    const denied = error.code === Code.PermissionDenied || error.code === Code.Unauthenticated;
    if (denied && minted) {
      process.stderr.write(
        "keel client: the admin token minted with the local configuration was refused: the server " +
          "signs with another key; pass --admin-token (keel token --user-id 1 --roles admin, run with the " +
          "server's configuration)\n",
      );
    }
    return 1;
  }
}

/** TrackOrder as the user; once SHIPPED, the carrier (as admin) reports the checkpoints. */
async function track(
  orders: OrderClient,
  orderId: bigint,
  asUser: { headers: Headers },
  asAdmin: { headers: Headers },
  print: (line: string) => void,
): Promise<number> {
  const abort = new AbortController();
  let carrier: Promise<UpdateShipmentResponse> | undefined;
  let events = 0;
  try {
    for await (const { event } of orders.trackOrder(
      { orderId },
      { ...asUser, signal: abort.signal, timeoutMs: 30_000 },
    )) {
      events++;
      print(`      ← ${describeOrderEvent(event)}`);
      if (event?.type === OrderEventType.SHIPPED && carrier === undefined) {
        print("      (the carrier reports checkpoints with UpdateShipment, as admin)");
        carrier = orders.updateShipment(checkpoints(orderId), asAdmin).then((reported) => {
          if (reported.errors.length === 0) return reported;
          throw new ConnectError(`UpdateShipment: ${reported.errors.join("; ")}`, Code.Internal);
        });
        // The track stream only ends on delivery: stop waiting if the carrier fails.
        carrier.catch(() => abort.abort());
      }
    }
  } catch (err) {
    // The carrier's failure says more than the cancelled stream.
    if (carrier !== undefined) await carrier;
    throw err;
  }
  await carrier;
  return events;
}

/** The carrier's checkpoints, a moment apart so they arrive live on the TrackOrder stream. */
async function* checkpoints(
  orderId: bigint,
): AsyncIterable<MessageInitShape<typeof UpdateShipmentRequestSchema>> {
  yield {
    orderId,
    checkpoint: { location: "Leipzig hub", status: CheckpointStatus.IN_TRANSIT, note: "sorted" },
  };
  await sleep(100);
  yield {
    orderId,
    checkpoint: { location: "front door", status: CheckpointStatus.DELIVERED, note: "handed over" },
  };
}

type OrderClient = Client<typeof OrderService>;

function usd(amountMinor: bigint) {
  return { currencyCode: "USD", amountMinor };
}

function bearer(token: string): Headers {
  return new Headers({ authorization: `Bearer ${token}` });
}
