import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  createAuthenticationInterceptor,
  createOidcVerifier,
  principalKey,
} from "@keel/interceptors";
import { startTestService } from "@keel/interceptors/testing";
import { startTestIssuer, type TestIssuer } from "@keel/interceptors/testing/oidc-issuer";
import { createClientCredentialsProvider } from "./client-credentials.ts";

// A real issuer on port 0 with a client credentials token endpoint, and a real service that
// accepts its tokens.
const secret = "s3cret:with/odd&chars";
let idp: TestIssuer;
let service: Awaited<ReturnType<typeof startTestService>>;
let refuseNext = false;

before(async () => {
  idp = await startTestIssuer({
    audience: "keel-api",
    clients: { orders: { secret, roles: ["fulfillment"] } },
  });
  service = await startTestService(
    [
      createAuthenticationInterceptor({
        issuer: "keel",
        audience: "keel",
        oidc: createOidcVerifier({ issuer: idp.url, audience: "keel-api" }),
      }),
    ],
    {
      getUser(req) {
        if (refuseNext) {
          refuseNext = false;
          throw new ConnectError("token revoked", Code.Unauthenticated);
        }
        return { user: { userId: req.userId } };
      },
      streamUserActivities: async function* (_req, ctx) {
        yield { action: ctx.values.get(principalKey)?.roles.join(",") ?? "" };
      },
    },
  );
});
after(async () => {
  await service.close();
  await idp.close();
});

const provider = (extra: Partial<Parameters<typeof createClientCredentialsProvider>[0]> = {}) =>
  createClientCredentialsProvider({
    issuer: idp.url,
    clientId: "orders",
    clientSecret: secret,
    ...extra,
  });

describe("client credentials token provider", () => {
  it("fetches one token for concurrent calls and keeps it until shortly before it expires", async () => {
    let clock = Date.now();
    const token = provider({ now: () => clock });
    const before = idp.requests.token;
    const tokens = await Promise.all([token(), token(), token(), token()]);
    assert.equal(new Set(tokens).size, 1);
    assert.equal(idp.requests.token, before + 1);
    clock += 260_000; // the token lives 300 s; renewed 30 s before
    assert.equal(await token(), tokens[0]);
    assert.equal(idp.requests.token, before + 1);
    clock += 20_000;
    const renewed = await token();
    assert.equal(idp.requests.token, before + 2);
    assert.notEqual(renewed, tokens[0]);
  });

  it("authenticates in the form with authMethod post, and to a token endpoint given directly", async () => {
    const token = createClientCredentialsProvider({
      tokenEndpoint: `${idp.url}/token`,
      clientId: "orders",
      clientSecret: secret,
      authMethod: "post",
    });
    const payload = JSON.parse(
      Buffer.from((await token()).split(".")[1] ?? "", "base64url").toString(),
    ) as { azp?: string; roles?: string[] };
    assert.deepEqual([payload.azp, payload.roles], ["orders", ["fulfillment"]]);
  });

  it("says UNAUTHENTICATED when the client is refused and UNAVAILABLE when the issuer is down, and tries again", async () => {
    const wrong = provider({ clientSecret: "wrong" });
    const before = idp.requests.token;
    for (let i = 0; i < 2; i++) {
      await assert.rejects(wrong(), (err: unknown) => {
        assert.ok(err instanceof ConnectError);
        assert.equal(err.code, Code.Unauthenticated);
        assert.match(err.rawMessage, /\/realms\/test\/token answered HTTP 401 \(invalid_client\)/);
        return true;
      });
    }
    assert.equal(idp.requests.token, before + 2);
    const down = provider({ issuer: "http://127.0.0.1:1/realms/gone" });
    await assert.rejects(down(), (err: unknown) => {
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code, Code.Unavailable);
      assert.match(
        err.rawMessage,
        /cannot reach http:\/\/127\.0\.0\.1:1\/realms\/gone\/\.well-known/,
      );
      return true;
    });
  });

  it("as an interceptor, calls a service that accepts the issuer's tokens, and forgets a refused token", async () => {
    const token = provider();
    const client = service.client("grpc", [token.interceptor]);
    const roles: string[] = [];
    for await (const activity of client.streamUserActivities({ userId: 1n })) {
      roles.push(activity.action);
    }
    assert.deepEqual(roles, ["fulfillment"]);
    await client.getUser({ userId: 1n });
    const before = idp.requests.token;
    refuseNext = true;
    await assert.rejects(client.getUser({ userId: 1n }), /token revoked/);
    await client.getUser({ userId: 2n });
    assert.equal(idp.requests.token, before + 1);
  });
});
