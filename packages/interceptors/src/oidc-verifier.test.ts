import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createAuthenticationInterceptor } from "./authentication.ts";
import { principalKey } from "./context.ts";
import { createOidcVerifier } from "./oidc-verifier.ts";
import { startTestIssuer, type TestIssuer } from "./testing/oidc-issuer.ts";
import { startTestService } from "./testing/test-service.ts";

// A real issuer on port 0 (discovery document, key set) and a real service behind the
// authentication interceptor with that issuer configured.
const cooldownMs = 300;
let idp: TestIssuer;
let service: Awaited<ReturnType<typeof startTestService>>;

before(async () => {
  idp = await startTestIssuer();
  service = await startTestService([
    createAuthenticationInterceptor({
      secret: new TextEncoder().encode("a-test-secret-of-at-least-32-bytes!!"),
      issuer: "keel",
      audience: "keel",
      oidc: createOidcVerifier({
        issuer: idp.url,
        audience: "keel-api",
        rolesClaim: "realm_access.roles",
        jwksCooldownMs: cooldownMs,
      }),
    }),
  ]);
});
after(async () => {
  await service.close();
  await idp.close();
});

const claims = (extra: Record<string, unknown> = {}) => ({
  sub: "idp-user-1",
  aud: "keel-api",
  realm_access: { roles: ["admin", "offline_access"] },
  ...extra,
});
const call = (token: string) =>
  service.client("grpc").getUser({ userId: 1n }, { headers: { authorization: `Bearer ${token}` } });
const refused = (code: Code, message?: RegExp) => (err: unknown) => {
  assert.ok(err instanceof ConnectError, String(err));
  assert.equal(Code[err.code], Code[code], err.message);
  if (message !== undefined) assert.match(err.rawMessage, message);
  return true;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("OpenID Connect access tokens", () => {
  it("accepts a token of the issuer, with its roles from a nested claim and no keel user", async () => {
    const before = service.seen.length;
    await call(await idp.sign(claims({ jti: "t-1" })));
    assert.deepEqual(service.seen[before]?.ctx.values.get(principalKey), {
      subject: "idp-user-1",
      userId: undefined,
      roles: ["admin", "offline_access"],
      tokenId: "t-1",
      issuer: idp.url,
    });
    assert.equal(idp.requests.discovery, 1);
  });

  it("refuses another audience, an expired token and a token signed by a key not in the set", async () => {
    await assert.rejects(
      call(await idp.sign(claims({ aud: "another-api" }))),
      refused(Code.Unauthenticated, /not accepted here \(aud claim\)/),
    );
    const past = Math.floor(Date.now() / 1000) - 3600;
    await assert.rejects(
      call(await idp.sign(claims({ iat: past, exp: past + 60 }))),
      refused(Code.Unauthenticated, /expired/),
    );
    await assert.rejects(
      call(await idp.signWithUnknownKey(claims(), idp.kid)),
      refused(Code.Unauthenticated, /invalid access token/),
    );
  });

  it("follows the issuer's key rotation, fetching the key set again for an unknown kid", async () => {
    await call(await idp.sign(claims()));
    const fetched = idp.requests.jwks;
    const oldKid = idp.kid;
    await idp.rotate();
    // Past the cooldown since the last fetch, an unknown kid makes the verifier fetch once.
    await sleep(cooldownMs + 50);
    const before = service.seen.length;
    await call(await idp.sign(claims({ sub: "after-rotation" })));
    assert.equal(service.seen[before]?.ctx.values.get(principalKey)?.subject, "after-rotation");
    assert.equal(idp.requests.jwks, fetched + 1);
    assert.notEqual(idp.kid, oldKid);
  });

  it("fetches the key set at most once per cooldown however many unknown kids arrive", async () => {
    await sleep(cooldownMs + 50);
    const fetched = idp.requests.jwks;
    const started = Date.now();
    for (let i = 0; i < 20; i++) {
      await assert.rejects(
        call(await idp.signWithUnknownKey(claims(), `forged-${i}`)),
        refused(Code.Unauthenticated),
      );
    }
    const cooldowns = Math.floor((Date.now() - started) / cooldownMs);
    const extra = idp.requests.jwks - fetched;
    assert.ok(
      extra >= 1 && extra <= 1 + cooldowns,
      `${extra} fetches in ${cooldowns + 1} cooldowns`,
    );
  });
});

describe("OpenID Connect verifier", () => {
  it("verifies ES256 tokens and maps roles through roleMapping, dropping the others", async () => {
    const es = await startTestIssuer({ alg: "ES256" });
    try {
      const verifier = createOidcVerifier({
        issuer: es.url,
        audience: ["keel-api", "other"],
        rolesClaim: "scope",
        roleMapping: { "keel:admin": "admin", "keel:ship": "fulfillment" },
      });
      await verifier.warm();
      assert.equal(es.requests.jwks, 1);
      const { principal } = await verifier.verify(
        await es.sign({ sub: "svc", aud: "keel-api", scope: "openid keel:ship keel:admin" }),
      );
      assert.deepEqual(principal.roles, ["fulfillment", "admin"]);
    } finally {
      await es.close();
    }
  });

  it("answers UNAVAILABLE when the issuer cannot be reached or its document names another issuer", async () => {
    const down = createOidcVerifier({ issuer: "http://127.0.0.1:1/realms/gone", audience: "a" });
    await assert.rejects(
      down.verify(await idp.sign(claims())),
      refused(Code.Unavailable, /identity provider cannot be reached/),
    );
    const other = createOidcVerifier({ issuer: `${idp.url}/`, audience: "keel-api" });
    await assert.rejects(
      other.warm(),
      refused(
        Code.Unavailable,
        /is the document of issuer http:\/\/127\.0\.0\.1:\d+\/realms\/test, not/,
      ),
    );
  });
});
