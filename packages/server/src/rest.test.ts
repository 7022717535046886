import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { mintToken, startTestServer, type TestServer } from "./testing/test-server.ts";

// Every REST route of docs/api.md's table, over plain HTTP/1.1 (fetch), against the real server: the
// success status and an error status each, through the same interceptors as gRPC and Connect.
let server: TestServer;
let admin: Record<string, string>;
before(async () => {
  server = await startTestServer();
  admin = { authorization: `Bearer ${server.adminToken}`, "content-type": "application/json" };
});
after(() => server.stop());

async function call(
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: options.headers ?? admin,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await res.text();
  const type = res.headers.get("content-type") ?? "";
  const body = type.includes("ndjson")
    ? text
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line))
    : text === ""
      ? undefined
      : JSON.parse(text);
  return { status: res.status, body, type };
}

function errorStatus(body: unknown): string | undefined {
  return (body as { error?: { status?: string } }).error?.status;
}

describe("REST routes", () => {
  let userId = "";
  let orderId = "";
  const password = "correct horse battery";

  it("POST /api/v1/users creates a user; a bad one is 400, a taken one 409", async () => {
    const created = await call("POST", "/api/v1/users", {
      body: { username: "resty", email: "resty@example.com", password, tags: ["rest"] },
      headers: { "content-type": "application/json" },
    });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    userId = created.body.user.userId;
    assert.match(userId, /^\d+$/, "int64 as a string");
    assert.equal(created.body.user.status, "USER_STATUS_ACTIVE", "enums by name");
    assert.match(created.body.user.createdAt, /^\d{4}-\d\d-\d\dT/, "timestamps as RFC 3339");
    const bad = await call("POST", "/api/v1/users", {
      body: { username: "x", email: "nope", password: "short" },
    });
    assert.equal(bad.status, 400);
    assert.equal(errorStatus(bad.body), "INVALID_ARGUMENT");
    assert.match(bad.body.error.message, /username: .*email: .*password: /);
    const taken = await call("POST", "/api/v1/users", {
      body: { username: "resty", email: "other@example.com", password },
    });
    assert.equal(taken.status, 409);
    assert.equal(errorStatus(taken.body), "ALREADY_EXISTS");
  });

  it("GET /api/v1/users/{user_id} answers the user itself (response_body); 401, 403 and 404 otherwise", async () => {
    const got = await call("GET", `/api/v1/users/${userId}`);
    assert.equal(got.status, 200);
    assert.equal(got.body.username, "resty");
    const fields = await call("GET", `/api/v1/users/${userId}?fields=username&fields=email`);
    assert.deepEqual(Object.keys(fields.body).sort(), ["email", "username"]);
    assert.equal((await call("GET", `/api/v1/users/${userId}`, { headers: {} })).status, 401);
    const stranger = await mintToken(999_999n);
    assert.equal(
      (
        await call("GET", `/api/v1/users/${userId}`, {
          headers: { authorization: `Bearer ${stranger}` },
        })
      ).status,
      403,
    );
    const missing = await call("GET", "/api/v1/users/424242");
    assert.equal(missing.status, 404);
    assert.equal(errorStatus(missing.body), "NOT_FOUND");
  });

  it("GET /api/v1/users lists with query parameters; a bad status is 400", async () => {
    const list = await call("GET", "/api/v1/users?page_size=10&status=USER_STATUS_ACTIVE");
    assert.equal(list.status, 200);
    assert.ok(list.body.users.some((u: { userId: string }) => u.userId === userId));
    assert.equal((await call("GET", "/api/v1/users?page_size=-1")).status, 400);
  });

  it("POST /api/v1/auth/login and /api/v1/auth/refresh issue tokens; wrong credentials are 401", async () => {
    const login = await call("POST", "/api/v1/auth/login", {
      body: { username: "resty", password },
      headers: { "content-type": "application/json" },
    });
    assert.equal(login.status, 200);
    assert.equal(login.body.tokenType, "Bearer");
    const refreshed = await call("POST", "/api/v1/auth/refresh", {
      body: { refreshToken: login.body.refreshToken },
      headers: { "content-type": "application/json" },
    });
    assert.equal(refreshed.status, 200);
    const wrong = await call("POST", "/api/v1/auth/login", {
      body: { username: "resty", password: "wrong password" },
    });
    assert.equal(wrong.status, 401);
    assert.equal(errorStatus(wrong.body), "UNAUTHENTICATED");
    assert.equal(
      (
        await call("POST", "/api/v1/auth/refresh", {
          body: { refreshToken: login.body.refreshToken },
        })
      ).status,
      401,
    );
  });

  it("GET /api/v1/users/{user_id}/activities streams newline-delimited JSON", async () => {
    const controller = new AbortController();
    const res = await fetch(`${server.url}/api/v1/users/${userId}/activities`, {
      headers: admin,
      signal: controller.signal,
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /application\/x-ndjson/);
    const reader = res.body?.getReader();
    let text = "";
    while (!text.includes("user.login")) {
      const chunk = await reader?.read();
      if (chunk === undefined || chunk.done) break;
      text += new TextDecoder().decode(chunk.value);
    }
    const actions = text
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line).action);
    assert.deepEqual(actions.slice(0, 2), ["user.created", "user.login"]);
    controller.abort();
    assert.equal((await call("GET", "/api/v1/users/0/activities")).status, 400);
  });

  it("POST /api/v1/users/{user_id}/orders creates an order; an unknown user is 400 (FAILED_PRECONDITION)", async () => {
    const items = [
      {
        sku: "S",
        name: "Sock",
        quantity: 2,
        unitPrice: { currencyCode: "EUR", amountMinor: "150" },
      },
    ];
    const created = await call("POST", `/api/v1/users/${userId}/orders`, {
      body: { items, idempotencyKey: "rest-1" },
    });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    orderId = created.body.order.orderId;
    assert.deepEqual(created.body.order.total, { currencyCode: "EUR", amountMinor: "300" });
    const unknown = await call("POST", "/api/v1/users/777777/orders", { body: { items } });
    assert.equal(unknown.status, 400);
    assert.equal(errorStatus(unknown.body), "FAILED_PRECONDITION");
  });

  it("GET /api/v1/orders/{order_id} and GET /api/v1/users/{user_id}/orders read orders; 404 otherwise", async () => {
    const got = await call("GET", `/api/v1/orders/${orderId}`);
    assert.equal(got.status, 200);
    assert.equal(got.body.order.status, "ORDER_STATUS_PENDING_PAYMENT");
    assert.equal((await call("GET", "/api/v1/orders/987654")).status, 404);
    const list = await call(
      "GET",
      `/api/v1/users/${userId}/orders?status=ORDER_STATUS_PENDING_PAYMENT`,
    );
    assert.equal(list.status, 200);
    assert.equal(list.body.orders.length, 1);
  });

  it("POST :pay takes the amount as the body and the key from the query; a wrong amount is 400", async () => {
    const wrong = await call("POST", `/api/v1/orders/${orderId}:pay?idempotency_key=p1`, {
      body: { currencyCode: "EUR", amountMinor: "1" },
    });
    assert.equal(wrong.status, 400);
    const paid = await call("POST", `/api/v1/orders/${orderId}:pay?idempotency_key=p1`, {
      body: { currencyCode: "EUR", amountMinor: "300" },
    });
    assert.equal(paid.status, 200, JSON.stringify(paid.body));
    assert.equal(paid.body.order.status, "ORDER_STATUS_PAID");
  });

  it("POST :ship ships a paid order; POST :cancel of a shipped order is 400 (FAILED_PRECONDITION)", async () => {
    const shipped = await call("POST", `/api/v1/orders/${orderId}:ship`, {
      body: { carrier: "DHL", trackingNumber: "T1" },
    });
    assert.equal(shipped.status, 200);
    assert.equal(shipped.body.order.status, "ORDER_STATUS_SHIPPED");
    const cancel = await call("POST", `/api/v1/orders/${orderId}:cancel`, {
      body: { reason: "late" },
    });
    assert.equal(cancel.status, 400);
    assert.equal(errorStatus(cancel.body), "FAILED_PRECONDITION");
    assert.match(cancel.body.error.message, /is SHIPPED/);
  });

  it("GET /api/v1/orders/{order_id}/events streams the order's events", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 2000).unref();
    const res = await fetch(`${server.url}/api/v1/orders/${orderId}/events`, {
      headers: admin,
      signal: controller.signal,
    });
    const reader = res.body?.getReader();
    let text = "";
    while (text.split("\n").filter((l) => l !== "").length < 3) {
      const chunk = await reader?.read();
      if (chunk === undefined || chunk.done) break;
      text += new TextDecoder().decode(chunk.value);
    }
    controller.abort();
    const types = text
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line).event.type);
    assert.deepEqual(types, [
      "ORDER_EVENT_TYPE_CREATED",
      "ORDER_EVENT_TYPE_PAID",
      "ORDER_EVENT_TYPE_SHIPPED",
    ]);
  });

  it("answers an unknown route with a JSON 404 and a wrong verb with 405", async () => {
    const missing = await call("GET", "/api/v1/nothing-here");
    assert.equal(missing.status, 404);
    assert.equal(errorStatus(missing.body), "NOT_FOUND");
    const verb = await call("DELETE", `/api/v1/users/${userId}`);
    assert.equal(verb.status, 405);
  });

  it("serves the OpenAPI document", async () => {
    const doc = await call("GET", "/openapi.json", { headers: {} });
    assert.equal(doc.status, 200);
    assert.match(doc.body.openapi, /^3\./);
    assert.ok(doc.body.paths["/api/v1/users/{user_id}"]);
  });
});
