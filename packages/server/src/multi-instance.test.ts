import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { createOrderClient, createUserClient } from "@keel/clients";
import { CheckpointStatus, OrderEventType } from "@keel/gen/order/v1/order_pb";
import { UserStatus, type UserStatusUpdateSchema } from "@keel/gen/user/v1/user_pb";
import { dropSchema, freshSchema, postgresSkipReason, postgresUrl } from "@keel/store/testing";
import { runServer, servingUrl } from "./testing/process.ts";
import { iterate, pushable, take } from "./testing/rpc.ts";
import { mintToken } from "./testing/test-server.ts";

// Two server processes share one PostgreSQL database; clients talk to different instances.
// Skipped only outside CI when no PostgreSQL is reachable; in CI that is a failure.
const skip = await postgresSkipReason();

describe("two instances on one PostgreSQL database", { skip: skip ?? false }, () => {
  const schema = freshSchema();
  const secret = "a shared secret of at least 32 characters";
  let urlA: string;
  let urlB: string;
  let admin: string;

  before(async () => {
    const env = {
      KEEL_DATABASE_URL: postgresUrl,
      KEEL_DATABASE_SCHEMA: schema,
      KEEL_PASSWORD_COST: "10",
      KEEL_JWT_SECRET: secret,
    };
    admin = await mintToken("admin", ["admin"], 600, new TextEncoder().encode(secret));
    // Both start at once: the migration must run exactly once.
    [urlA, urlB] = await Promise.all([servingUrl(runServer(env)), servingUrl(runServer(env))]);
  });
  after(() => dropSchema(schema));

  it("delivers a status update sent to instance A to a SyncUserStatus client on instance B", async () => {
    const usersA = createUserClient({ baseUrl: urlA, token: admin });
    const usersB = createUserClient({ baseUrl: urlB, token: admin });
    const { user } = await usersA.createUser({
      username: "roaming",
      email: "roaming@example.com",
      password: "correct horse battery",
    });
    const userId = user?.userId ?? 0n;
    const followerOut = pushable<MessageInitShape<typeof UserStatusUpdateSchema>>();
    const controller = new AbortController();
    const followerIn = usersB
      .syncUserStatus(followerOut, { signal: controller.signal, timeoutMs: 0 })
      [Symbol.asyncIterator]();
    followerOut.push({ userId });
    assert.equal((await take(followerIn, 1))[0]?.status, UserStatus.ACTIVE);

    const activities = usersB
      .streamUserActivities({ userId }, { signal: controller.signal, timeoutMs: 0 })
      [Symbol.asyncIterator]();
    assert.equal((await take(activities, 1))[0]?.action, "user.created");

    const updaterOut = pushable<MessageInitShape<typeof UserStatusUpdateSchema>>();
    const updaterIn = usersA.syncUserStatus(updaterOut, { timeoutMs: 0 })[Symbol.asyncIterator]();
    updaterOut.push({ userId, status: UserStatus.SUSPENDED });
    const [update] = await take(followerIn, 1);
    assert.equal(update?.userId, userId);
    assert.equal(update?.status, UserStatus.SUSPENDED);
    assert.equal((await take(activities, 1))[0]?.action, "user.status_changed");
    updaterOut.end();
    assert.equal((await updaterIn.next()).done, true);
    controller.abort();
  });

  it("delivers a checkpoint streamed to instance A to a TrackOrder client on instance B", async () => {
    const usersA = createUserClient({ baseUrl: urlA, token: admin });
    const ordersA = createOrderClient({ baseUrl: urlA, token: admin });
    const ordersB = createOrderClient({ baseUrl: urlB, token: admin });
    const { user } = await usersA.createUser({
      username: "shopper",
      email: "shopper@example.com",
      password: "correct horse battery",
    });
    const { order } = await ordersB.createOrder({
      userId: user?.userId ?? 0n,
      items: [
        {
          sku: "S",
          name: "Sock",
          quantity: 2,
          unitPrice: { currencyCode: "EUR", amountMinor: 300n },
        },
      ],
    });
    const orderId = order?.orderId ?? 0n;
    await ordersA.payOrder({ orderId, amount: order?.total, idempotencyKey: "p1" });
    await ordersA.shipOrder({ orderId, carrier: "DHL", trackingNumber: "JJD0001" });

    const tracking = ordersB.trackOrder({ orderId }, { timeoutMs: 0 })[Symbol.asyncIterator]();
    const history = await take(tracking, 3);
    assert.deepEqual(
      history.map((r) => r.event?.type),
      [OrderEventType.CREATED, OrderEventType.PAID, OrderEventType.SHIPPED],
    );
    const result = await ordersA.updateShipment(
      iterate([
        { orderId, checkpoint: { location: "Hamburg", status: CheckpointStatus.IN_TRANSIT } },
        { orderId, checkpoint: { location: "Munich", status: CheckpointStatus.DELIVERED } },
      ]),
    );
    assert.equal(result.appliedCount, 2);
    const live = await take(tracking, 2);
    assert.equal(live[0]?.event?.type, OrderEventType.CHECKPOINT);
    assert.equal(live[0]?.event?.checkpoint?.location, "Hamburg");
    assert.equal(live[1]?.event?.type, OrderEventType.DELIVERED);
    assert.equal((await tracking.next()).done, true);
  });

  it("stops a user's tokens on instance B within 5 s of a suspension made on instance A", async () => {
    const adminA = createUserClient({ baseUrl: urlA, token: admin });
    const password = "correct horse battery";
    const { user } = await adminA.createUser({
      username: "suspendable",
      email: "suspendable@example.com",
      password,
    });
    const userId = user?.userId ?? 0n;
    const { accessToken } = await createUserClient({ baseUrl: urlB }).login({
      username: "suspendable",
      password,
    });
    const ownB = createUserClient({ baseUrl: urlB, token: accessToken });
    assert.equal((await ownB.getUser({ userId })).user?.userId, userId);
    await adminA.batchUpdateUsers(iterate([{ userId, user: { status: UserStatus.SUSPENDED } }]));
    const suspendedAt = Date.now();
    // B has the user's status in memory from the call above; it must read it again in time.
    let refused: ConnectError | undefined;
    while (refused === undefined && Date.now() - suspendedAt < 5000) {
      await ownB.getUser({ userId }).catch((err: unknown) => {
        refused = ConnectError.from(err);
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(refused?.code, Code.PermissionDenied, "still accepted 5 s after the suspension");
    assert.match(refused?.rawMessage ?? "", /this account is suspended/);
  });
});
