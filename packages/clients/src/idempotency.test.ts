import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DescMethod } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { OrderService } from "@keel/gen/order/v1/order_pb";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { createIdempotencyCheck } from "./idempotency.ts";

const { getUser, createUser, streamUserActivities, login } = UserService.method;
const { createOrder, payOrder, getOrder, cancelOrder } = OrderService.method;

describe("idempotency check", () => {
  const isIdempotent = createIdempotencyCheck();

  it("takes keel's reads as idempotent, unary and streaming", () => {
    assert.equal(isIdempotent(getUser, { userId: 1n }), true);
    assert.equal(isIdempotent(streamUserActivities, { userId: 1n }), true);
    assert.equal(isIdempotent(getOrder, { orderId: 1n }), true);
  });

  it("takes a write as idempotent only when it carries an idempotency key", () => {
    assert.equal(isIdempotent(createOrder, { userId: 1n, idempotencyKey: "k1" }), true);
    assert.equal(isIdempotent(createOrder, { userId: 1n }), false);
    assert.equal(isIdempotent(createOrder, { userId: 1n, idempotencyKey: "" }), false);
    assert.equal(isIdempotent(payOrder, { orderId: 1n, idempotencyKey: "p1" }), true);
    assert.equal(isIdempotent(createUser, { username: "ada" }), false);
    assert.equal(isIdempotent(login, { username: "ada" }), false);
    assert.equal(isIdempotent(cancelOrder, { orderId: 1n }), false);
  });

  it("follows the idempotency_level option of a method's proto", () => {
    const declared = { ...cancelOrder, idempotency: MethodOptions_IdempotencyLevel.IDEMPOTENT };
    assert.equal(isIdempotent(declared as DescMethod, { orderId: 1n }), true);
    const readOnly = { ...login, idempotency: MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS };
    assert.equal(isIdempotent(readOnly as DescMethod, {}), true);
  });

  it("takes its own list of methods and key field", () => {
    const check = createIdempotencyCheck({
      idempotentMethods: ["order.v1.OrderService/CancelOrder"],
      idempotencyKeyField: "no_such_field",
    });
    assert.equal(check(cancelOrder, { orderId: 1n }), true);
    // Listed by default but not here, and not declared in its proto (GetUser now is).
    assert.equal(check(streamUserActivities, { userId: 1n }), false);
    assert.equal(check(getUser, { userId: 1n }), true, "declared NO_SIDE_EFFECTS in its proto");
    assert.equal(check(createOrder, { idempotencyKey: "k1" }), false);
  });
});
