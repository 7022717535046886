import assert from "node:assert/strict";
import { AsyncLocalStorage } from "node:async_hooks";
import { describe, it } from "node:test";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { UserService } from "@keel/gen/user/v1/user_pb";
import {
  createRequestIdPropagationInterceptor,
  type RequestIdPropagationOptions,
} from "./request-id.ts";

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A client whose server answers with the request id header it received, as username or action. */
function echoClient(options?: RequestIdPropagationOptions, header = "x-request-id") {
  const transport = createRouterTransport(
    (router) =>
      router.service(UserService, {
        getUser: (_req, ctx) => ({
          user: { username: ctx.requestHeader.get(header) ?? "(none)" },
        }),
        async *streamUserActivities(_req, ctx) {
          yield { action: ctx.requestHeader.get(header) ?? "(none)" };
        },
      }),
    { transport: { interceptors: [createRequestIdPropagationInterceptor(options)] } },
  );
  return createClient(UserService, transport);
}

async function sentId(client: ReturnType<typeof echoClient>, headers?: Record<string, string>) {
  return (await client.getUser({ userId: 1n }, { headers })).user?.username;
}

describe("request id propagation interceptor", () => {
  it("sends a new UUID per call when there is no current id", async () => {
    const client = echoClient();
    const first = await sentId(client);
    const second = await sentId(client);
    assert.match(String(first), uuid);
    assert.match(String(second), uuid);
    assert.notEqual(first, second);
  });

  it("keeps a call's own id", async () => {
    const client = echoClient({ get: () => "from-get" });
    assert.equal(await sentId(client, { "x-request-id": "mine" }), "mine");
  });

  it("sends the id get() returns, for example from an AsyncLocalStorage", async () => {
    const currentRequestId = new AsyncLocalStorage<string>();
    const client = echoClient({ get: () => currentRequestId.getStore() });
    assert.equal(await currentRequestId.run("req-1", () => sentId(client)), "req-1");
    assert.equal(await currentRequestId.run("req-2", () => sentId(client)), "req-2");
    assert.match(String(await sentId(client)), uuid, "outside a request: a new id");
    assert.match(String(await currentRequestId.run("", () => sentId(client))), uuid, "empty id");
  });

  it("covers streaming calls", async () => {
    const client = echoClient({ get: () => "stream-id" });
    const actions: string[] = [];
    for await (const activity of client.streamUserActivities({ userId: 1n })) {
      actions.push(activity.action);
    }
    assert.deepEqual(actions, ["stream-id"]);
  });

  it("uses the configured header", async () => {
    const client = echoClient(
      { header: "x-correlation-id", get: () => "corr" },
      "x-correlation-id",
    );
    assert.equal(await sentId(client), "corr");
    assert.equal(await sentId(client, { "X-Correlation-Id": "own" }), "own");
  });
});
