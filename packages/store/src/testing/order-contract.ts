import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CheckpointStatus, OrderEventType, OrderStatus } from "@keel/gen/order/v1/order_pb";
import { UserStatus } from "@keel/gen/user/v1/user_pb";
import { StoreError } from "../store-error.ts";
import type { NewOrder, Store } from "../types.ts";
import type { ContractStoreOptions } from "./store-contract.ts";

/** The order behaviour every Store must have; see storeContract. */
export function orderContract(
  name: string,
  open: (options?: ContractStoreOptions) => Promise<Store>,
  options: { skip?: string } = {},
): void {
  describe(`${name} store contract: orders`, { skip: options.skip ?? false }, () => {
    const withStore = async (
      body: (store: Store, userId: bigint) => Promise<void>,
      options?: ContractStoreOptions,
    ) => {
      const store = await open(options);
      try {
        const user = await store.users.create({
          username: "buyer",
          email: "buyer@example.com",
          status: UserStatus.ACTIVE,
          tags: [],
          passwordHash: "h",
        });
        await body(store, user.id);
      } finally {
        await store.close();
      }
    };
    const order = (userId: bigint, extra: Partial<NewOrder> = {}): NewOrder => ({
      userId,
      currency: "USD",
      items: [
        { sku: "A-1", name: "Apple", quantity: 3, unitPriceMinor: 125n },
        { sku: "B-2", name: "Bread", quantity: 1, unitPriceMinor: 450n },
      ],
      ...extra,
    });
    const precondition = (pattern: RegExp) => (err: unknown) =>
      err instanceof StoreError && err.kind === "failed_precondition" && pattern.test(err.message);

    it("creates an order with its items, total and a CREATED event", () =>
      withStore(async (store, userId) => {
        const { order: created, created: isNew } = await store.orders.create(order(userId));
        assert.equal(isNew, true);
        assert.equal(created.status, OrderStatus.PENDING_PAYMENT);
        assert.equal(created.totalMinor, 825n);
        assert.deepEqual(
          created.items.map((i) => i.sku),
          ["A-1", "B-2"],
        );
        assert.equal(created.payment, undefined);
        assert.equal(created.shipment, undefined);
        assert.deepEqual(await store.orders.get(created.id), created);
        const events = await store.orders.events(created.id, { limit: 10 });
        assert.deepEqual(
          events.map((e) => e.type),
          [OrderEventType.CREATED],
        );
      }));

    it("returns the first order for a retried idempotency key and refuses it for another request", () =>
      withStore(async (store, userId) => {
        const first = await store.orders.create(
          order(userId, { idempotencyKey: "k1", fingerprint: "f1" }),
        );
        const retry = await store.orders.create(
          order(userId, { idempotencyKey: "k1", fingerprint: "f1" }),
        );
        assert.equal(retry.created, false);
        assert.deepEqual(retry.order, first.order);
        assert.equal((await store.orders.list({ userId, limit: 10 })).length, 1);
        await assert.rejects(
          store.orders.create(order(userId, { idempotencyKey: "k1", fingerprint: "other" })),
          (err: unknown) =>
            err instanceof StoreError &&
            err.kind === "already_exists" &&
            err.field === "idempotency_key",
        );
      }));

    it("creates one order when first attempts with the same key race", () =>
      withStore(async (store, userId) => {
        const attempts = await Promise.all(
          Array.from({ length: 4 }, () =>
            store.orders.create(order(userId, { idempotencyKey: "race", fingerprint: "f" })),
          ),
        );
        assert.equal(attempts.filter((a) => a.created).length, 1);
        const ids = new Set(attempts.map((a) => a.order.id));
        assert.equal(ids.size, 1);
        assert.equal((await store.orders.list({ userId, limit: 10 })).length, 1);
        const [id] = ids as Set<bigint>;
        const events = await store.orders.events(id as bigint, { limit: 10 });
        assert.deepEqual(
          events.map((e) => e.type),
          [OrderEventType.CREATED],
        );
      }));

    it("walks the state machine: pay, ship, checkpoints, delivered", () =>
      withStore(async (store, userId) => {
        const { order: created } = await store.orders.create(order(userId));
        const events = store.orders;
        const live = store.events.orderEvents(created.id, {});
        const paid = await store.orders.pay(created.id, {
          amountMinor: 825n,
          currency: "USD",
          idempotencyKey: "pay-1",
        });
        assert.equal(paid.created, true);
        assert.equal(paid.order.status, OrderStatus.PAID);
        assert.equal(paid.payment.amountMinor, 825n);
        assert.deepEqual(paid.order, await store.orders.get(created.id));
        // The same key again returns the same payment and records nothing new.
        const again = await store.orders.pay(created.id, {
          amountMinor: 825n,
          currency: "USD",
          idempotencyKey: "pay-1",
        });
        assert.equal(again.created, false);
        assert.deepEqual(again.payment, paid.payment);
        await assert.rejects(
          store.orders.pay(created.id, {
            amountMinor: 825n,
            currency: "USD",
            idempotencyKey: "pay-2",
          }),
          precondition(/is PAID; pay needs PENDING_PAYMENT/),
        );
        const shipped = await store.orders.ship(created.id, {
          carrier: "DHL",
          trackingNumber: "T1",
        });
        assert.equal(shipped.status, OrderStatus.SHIPPED);
        assert.equal(shipped.shipment?.carrier, "DHL");
        const time = new Date(Date.now() - 1000);
        const moving = await store.orders.addCheckpoint(created.id, {
          location: "Leipzig",
          status: CheckpointStatus.IN_TRANSIT,
          time,
          note: "",
        });
        assert.equal(moving.status, OrderStatus.SHIPPED);
        assert.deepEqual(
          moving.shipment?.checkpoints.map((c) => c.location),
          ["Leipzig"],
        );
        assert.equal(moving.shipment?.checkpoints[0]?.time.getTime(), time.getTime());
        const delivered = await store.orders.addCheckpoint(created.id, {
          location: "Berlin",
          status: CheckpointStatus.DELIVERED,
          time: new Date(),
          note: "left at the door",
        });
        assert.equal(delivered.status, OrderStatus.DELIVERED);
        assert.ok(delivered.shipment?.deliveredAt);
        await assert.rejects(
          store.orders.addCheckpoint(created.id, {
            location: "Berlin",
            status: CheckpointStatus.IN_TRANSIT,
            time: new Date(),
            note: "",
          }),
          precondition(/is DELIVERED; checkpoint needs SHIPPED/),
        );
        const types = (await events.events(created.id, { limit: 10 })).map((e) => e.type);
        assert.deepEqual(types, [
          OrderEventType.CREATED,
          OrderEventType.PAID,
          OrderEventType.SHIPPED,
          OrderEventType.CHECKPOINT,
          OrderEventType.DELIVERED,
        ]);
        // Live events arrive in order; the CREATED event may precede them (see storeContract).
        const seen: (OrderEventType | undefined)[] = [];
        while (seen.length < types.length - 1) {
          const type = (await live.next()).value?.type;
          if (type !== OrderEventType.CREATED) seen.push(type);
        }
        assert.deepEqual(seen, types.slice(1));
        live.close();
      }));

    it("refuses every illegal transition, naming the current status", () =>
      withStore(async (store, userId) => {
        const { order: pending } = await store.orders.create(order(userId));
        await assert.rejects(
          store.orders.ship(pending.id, { carrier: "DHL", trackingNumber: "T" }),
          precondition(/is PENDING_PAYMENT; ship needs PAID/),
        );
        const checkpoint = {
          location: "X",
          status: CheckpointStatus.IN_TRANSIT,
          time: new Date(),
          note: "",
        };
        await assert.rejects(
          store.orders.addCheckpoint(pending.id, checkpoint),
          precondition(/checkpoint needs SHIPPED/),
        );
        const cancelled = await store.orders.cancel(pending.id, "changed my mind");
        assert.equal(cancelled.status, OrderStatus.CANCELLED);
        assert.equal(cancelled.cancelReason, "changed my mind");
        await assert.rejects(store.orders.cancel(pending.id, ""), precondition(/is CANCELLED/));
        await assert.rejects(
          store.orders.pay(pending.id, { amountMinor: 825n, currency: "USD", idempotencyKey: "p" }),
          precondition(/is CANCELLED; pay needs PENDING_PAYMENT/),
        );
        const { order: other } = await store.orders.create(order(userId));
        await store.orders.pay(other.id, {
          amountMinor: 825n,
          currency: "USD",
          idempotencyKey: "p",
        });
        await store.orders.ship(other.id, { carrier: "UPS", trackingNumber: "1Z" });
        await assert.rejects(
          store.orders.cancel(other.id, ""),
          precondition(/is SHIPPED; cancel needs PENDING_PAYMENT or PAID/),
        );
        await assert.rejects(
          store.orders.ship(987654n, { carrier: "UPS", trackingNumber: "1Z" }),
          (err: unknown) => err instanceof StoreError && err.kind === "not_found",
        );
      }));

    it("lists a user's orders by keyset and status", () =>
      withStore(async (store, userId) => {
        const ids: bigint[] = [];
        for (let i = 0; i < 4; i++) ids.push((await store.orders.create(order(userId))).order.id);
        await store.orders.cancel(ids[1] as bigint, "");
        assert.deepEqual(
          (await store.orders.list({ userId, limit: 2 })).map((o) => o.id),
          ids.slice(0, 2),
        );
        assert.deepEqual(
          (await store.orders.list({ userId, limit: 10, afterId: ids[1] as bigint })).map(
            (o) => o.id,
          ),
          ids.slice(2),
        );
        assert.deepEqual(
          (await store.orders.list({ userId, limit: 10, status: OrderStatus.CANCELLED })).map(
            (o) => o.id,
          ),
          [ids[1]],
        );
        assert.deepEqual(await store.orders.list({ userId: userId + 100n, limit: 10 }), []);
      }));

    it("reads an order or a page of orders in a bounded number of queries, whatever their size", () => {
      let queries = 0;
      const counted = async <T>(read: () => Promise<T>) => {
        queries = 0;
        const result = await read();
        return { result, queries };
      };
      return withStore(
        async (store, userId) => {
          // Every shape an order can have: pending, paid, shipped with checkpoints, cancelled.
          const ids: bigint[] = [];
          for (let i = 0; i < 24; i++) {
            const { order: created } = await store.orders.create(order(userId));
            ids.push(created.id);
            if (i % 4 === 3) await store.orders.cancel(created.id, `reason ${i}`);
            if (i % 4 === 0) continue;
            if (i % 4 === 3) continue;
            await store.orders.pay(created.id, {
              amountMinor: 825n,
              currency: "USD",
              idempotencyKey: `p${i}`,
            });
            if (i % 4 === 1) continue;
            await store.orders.ship(created.id, { carrier: "DHL", trackingNumber: `T${i}` });
            for (let c = 0; c < i % 3; c++) {
              await store.orders.addCheckpoint(created.id, {
                location: `hub ${i}.${c}`,
                status: CheckpointStatus.IN_TRANSIT,
                time: new Date(1_700_000_000_000 + c),
                note: "",
              });
            }
          }
          const one = await counted(() => store.orders.get(ids[2] as bigint));
          const small = await counted(() => store.orders.list({ userId, limit: 3 }));
          const large = await counted(() => store.orders.list({ userId, limit: 1000 }));
          // The orders, then items, payments and (when one is shipped) checkpoints: 4 at most.
          assert.ok(one.queries <= 4, `get ran ${one.queries} queries`);
          assert.ok(large.queries <= 4, `a page of 24 ran ${large.queries} queries`);
          assert.equal(large.queries, small.queries);
          assert.deepEqual(
            large.result.map((o) => o.id),
            ids,
          );
          // Batched reads put each item, payment and checkpoint on its own order.
          for (const listed of large.result) {
            assert.deepEqual(listed, await store.orders.get(listed.id));
          }
          assert.equal(large.result[2]?.shipment?.checkpoints.length, 2);
          assert.equal(large.result[1]?.payment?.idempotencyKey, "p1");
          assert.equal(large.result[3]?.cancelReason, "reason 3");
          assert.deepEqual(await store.orders.list({ userId: userId + 100n, limit: 10 }), []);
        },
        {
          onQuery: () => {
            queries++;
          },
        },
      );
    });
  });
}
