import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { createBearerTokenInterceptor, type TokenSource } from "./bearer-token.ts";

/** A client whose server answers GetUser with the authorization header it received, as username. */
function echoClient(source: TokenSource) {
  const transport = createRouterTransport(
    (router) =>
      router.service(UserService, {
        getUser: (_req, ctx) => ({
          user: { username: ctx.requestHeader.get("authorization") ?? "(none)" },
        }),
      }),
    { transport: { interceptors: [createBearerTokenInterceptor(source)] } },
  );
  return createClient(UserService, transport);
}

describe("bearer token interceptor", () => {
  it("sends a static token", async () => {
    const { user } = await echoClient("abc").getUser({ userId: 1n });
    assert.equal(user?.username, "Bearer abc");
  });

  it("asks a token provider on every call, so refreshed tokens are used", async () => {
    let n = 0;
    const client = echoClient(async () => `token-${++n}`);
    assert.equal((await client.getUser({ userId: 1n })).user?.username, "Bearer token-1");
    assert.equal((await client.getUser({ userId: 1n })).user?.username, "Bearer token-2");
  });

  it("leaves a call's own authorization header alone and sends nothing for an empty token", async () => {
    const client = echoClient("abc");
    const own = await client.getUser({ userId: 1n }, { headers: { authorization: "Bearer mine" } });
    assert.equal(own.user?.username, "Bearer mine");
    assert.equal((await echoClient("").getUser({ userId: 1n })).user?.username, "(none)");
  });
});
