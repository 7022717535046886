import assert from "node:assert/strict";
import { createHmac, pbkdf2 } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from "jose";
import { createAuthenticationInterceptor } from "./authentication.ts";
import { principalKey } from "./context.ts";
import { messages, protocols, startTestService } from "./testing/test-service.ts";

const secret = new TextEncoder().encode("a-test-secret-of-at-least-32-bytes!!");
const issuer = "keel";
const audience = "keel";
const now = () => Math.floor(Date.now() / 1000);
const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

let rsa: Awaited<ReturnType<typeof generateKeyPair>>;
let ec: Awaited<ReturnType<typeof generateKeyPair>>;
let service: Awaited<ReturnType<typeof startTestService>>;

/** A token as keel issues them, with `claims` overriding its claims. */
function hs256(claims: Record<string, unknown> = {}, key: Uint8Array = secret) {
  return new SignJWT({
    typ: "access",
    roles: ["user"],
    iss: issuer,
    aud: audience,
    sub: "42",
    iat: now(),
    exp: now() + 300,
    ...claims,
  })
    .setProtectedHeader({ alg: "HS256" })
    .sign(key);
}

before(async () => {
  rsa = await generateKeyPair("RS256", { extractable: true });
  ec = await generateKeyPair("ES256", { extractable: true });
  const keys: JWK[] = [
    { ...(await exportJWK(rsa.publicKey)), kid: "rsa-1", alg: "RS256" },
    { ...(await exportJWK(ec.publicKey)), kid: "ec-1", alg: "ES256" },
  ];
  service = await startTestService([
    createAuthenticationInterceptor({
      secret,
      jwks: { keys },
      issuer,
      audience,
      clockToleranceSeconds: 5,
    }),
  ]);
});
after(() => service.close());

const asBearer =
  (token: string): Interceptor =>
  (next) =>
  (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
const withHeader =
  (value: string): Interceptor =>
  (next) =>
  (req) => {
    req.header.set("authorization", value);
    return next(req);
  };

async function expectUnauthenticated(interceptors: Interceptor[], message?: RegExp) {
  await assert.rejects(
    service.client("grpc", interceptors).getUser({ userId: 1n }),
    (err: unknown) => {
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code, Code.Unauthenticated, err.message);
      if (message !== undefined) assert.match(err.rawMessage, message);
      return true;
    },
  );
}

describe("authentication interceptor", () => {
  for (const protocol of protocols) {
    it(`puts the caller in the context for every call kind over ${protocol}`, async () => {
      const client = service.client(protocol, [
        asBearer(await hs256({ roles: ["admin"], jti: "t1", sid: "s1" })),
      ]);
      const before = service.seen.length;
      await client.getUser({ userId: 1n });
      for await (const _ of client.streamUserActivities({ userId: 1n })) {
        // drain
      }
      await client.batchUpdateUsers(messages([{ userId: 1n }]));
      for await (const _ of client.syncUserStatus(messages([{ userId: 1n }]))) {
        // drain
      }
      const calls = service.seen.slice(before);
      assert.deepEqual(
        calls.map((c) => c.method),
        ["GetUser", "StreamUserActivities", "BatchUpdateUsers", "SyncUserStatus"],
      );
      for (const call of calls) {
        assert.deepEqual(call.ctx.values.get(principalKey), {
          subject: "42",
          userId: 42n,
          roles: ["admin"],
          tokenId: "t1",
          issuer: "keel",
          sessionId: "s1",
        });
      }
    });

    it(`refuses calls without a token over ${protocol}, streams included`, async () => {
      const client = service.client(protocol);
      await assert.rejects(client.getUser({ userId: 1n }), /missing access token/);
      await assert.rejects(
        async () => {
          for await (const _ of client.streamUserActivities({ userId: 1n })) {
            // nothing arrives
          }
        },
        (err: unknown) => err instanceof ConnectError && err.code === Code.Unauthenticated,
      );
      await assert.rejects(client.batchUpdateUsers(messages([{ userId: 1n }])), (err: unknown) => {
        return err instanceof ConnectError && err.code === Code.Unauthenticated;
      });
    });
  }

  it("accepts RS256 and ES256 tokens from the JWKS", async () => {
    for (const [alg, key, kid] of [
      ["RS256", rsa.privateKey, "rsa-1"],
      ["ES256", ec.privateKey, "ec-1"],
    ] as const) {
      const token = await new SignJWT({ roles: ["fulfillment"] })
        .setProtectedHeader({ alg, kid })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject("ops-bot")
        .setExpirationTime(now() + 60)
        .sign(key);
      const { user } = await service.client("grpc", [asBearer(token)]).getUser({ userId: 7n });
      assert.equal(user?.userId, 7n);
      assert.deepEqual(service.seen.at(-1)?.ctx.values.get(principalKey), {
        subject: "ops-bot",
        userId: undefined,
        roles: ["fulfillment"],
        tokenId: undefined,
        issuer: "keel",
        sessionId: undefined,
      });
    }
  });

  it("refuses a token it accepted (and remembered) once the token has expired", async () => {
    // No clock slack, so that the token's `exp` is the moment it stops being accepted.
    const strict = await startTestService([
      createAuthenticationInterceptor({ secret, issuer, audience, clockToleranceSeconds: 0 }),
    ]);
    try {
      const exp = now() + 2;
      const client = strict.client("grpc", [asBearer(await hs256({ exp }))]);
      assert.equal((await client.getUser({ userId: 1n })).user?.userId, 1n);
      assert.equal((await client.getUser({ userId: 2n })).user?.userId, 2n);
      await new Promise((resolve) => setTimeout(resolve, exp * 1000 - Date.now() + 50));
      await assert.rejects(client.getUser({ userId: 3n }), (err: unknown) => {
        assert.ok(err instanceof ConnectError);
        assert.equal(err.code, Code.Unauthenticated);
        assert.match(err.rawMessage, /access token expired/);
        return true;
      });
    } finally {
      await strict.close();
    }
  });

  it("lets public methods through without a token, ignoring an invalid one", async () => {
    assert.equal((await service.client("grpc").login({})).accessToken, "a");
    assert.equal(
      (await service.client("grpc", [asBearer("x.y.z")]).refreshToken({})).accessToken,
      "a",
    );
  });

  describe("refuses every forged, stale or misused token with UNAUTHENTICATED", () => {
    it("alg none", async () => {
      const token = `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "42", typ: "access", iss: issuer, aud: audience, exp: now() + 60 })}.`;
      await expectUnauthenticated([asBearer(token)], /invalid access token/);
    });

    it("algorithm confusion: HS256 signed with the RSA public key", async () => {
      const pem = new TextEncoder().encode(await exportSPKI(rsa.publicKey));
      const jwk = new TextEncoder().encode(JSON.stringify(await exportJWK(rsa.publicKey)));
      await expectUnauthenticated([asBearer(await hs256({}, pem))]);
      const confused = await new SignJWT({ typ: "access" })
        .setProtectedHeader({ alg: "HS256", kid: "rsa-1" })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject("42")
        .setExpirationTime(now() + 60)
        .sign(jwk);
      await expectUnauthenticated([asBearer(confused)]);
    });

    it("an algorithm the server does not accept (HS512, PS256)", async () => {
      const hs512 = await new SignJWT({ typ: "access" })
        .setProtectedHeader({ alg: "HS512" })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject("42")
        .setExpirationTime(now() + 60)
        .sign(new Uint8Array(64).fill(7));
      await expectUnauthenticated([asBearer(hs512)]);
    });

    it("expired and not yet valid", async () => {
      await expectUnauthenticated([asBearer(await hs256({ exp: now() - 60 }))], /expired/);
      await expectUnauthenticated([asBearer(await hs256({ nbf: now() + 120 }))], /not valid yet/);
    });

    it("a wrong issuer or audience", async () => {
      await expectUnauthenticated([asBearer(await hs256({ iss: "someone-else" }))], /iss claim/);
      await expectUnauthenticated([asBearer(await hs256({ aud: "another-service" }))], /aud claim/);
    });

    it("a refresh token used as an access token", async () => {
      await expectUnauthenticated(
        [asBearer(await hs256({ typ: "refresh", fam: "f" }))],
        /refresh token is not an access token/,
      );
    });

    it("a tampered payload or signature, and a wrong key", async () => {
      const [header, , signature] = (await hs256()).split(".");
      const forged = `${header}.${b64({ sub: "1", typ: "access", roles: ["admin"], iss: issuer, aud: audience, exp: now() + 60 })}.${signature}`;
      await expectUnauthenticated([asBearer(forged)]);
      await expectUnauthenticated([
        asBearer(await hs256({}, new TextEncoder().encode("another-secret-of-at-least-32-bytes!"))),
      ]);
    });

    it("an RS256 token signed by a key not in the JWKS", async () => {
      const other = await generateKeyPair("RS256");
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: "RS256", kid: "rsa-1" })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject("42")
        .setExpirationTime(now() + 60)
        .sign(other.privateKey);
      await expectUnauthenticated([asBearer(token)]);
    });

    it("malformed authorization headers", async () => {
      for (const value of [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "bearer abc.def.ghi",
        "Bearer not-a-jwt",
        `Bearer ${await hs256()} extra`,
      ]) {
        await expectUnauthenticated(
          [withHeader(value)],
          /malformed authorization header|invalid access token/,
        );
      }
    });

    it("claims of the wrong shape", async () => {
      await expectUnauthenticated(
        [asBearer(await hs256({ roles: "admin" }))],
        /invalid token claims/,
      );
    });
  });

  it("verifies HS256 tokens on the event loop, not behind a busy thread pool", async () => {
    // Fill libuv's thread pool (4 threads by default) with slow work, as a flood of password
    // hashes does; a fresh token must still be verified before any of that work ends.
    const token = await hs256({ jti: "fresh-under-load" });
    const order: string[] = [];
    const jobs = Array.from(
      { length: 8 },
      (_, i) =>
        new Promise<void>((resolve, reject) =>
          pbkdf2("p", "s", 400_000, 32, "sha256", (err) => {
            order.push(`pool ${i}`);
            if (err) reject(err);
            else resolve();
          }),
        ),
    );
    const { user } = await service.client("grpc", [asBearer(token)]).getUser({ userId: 3n });
    order.push("call");
    assert.equal(user?.userId, 3n);
    await Promise.all(jobs);
    assert.equal(order[0], "call", `the call waited for the pool: ${order.join(", ")}`);
  });

  it("refuses a token whose header is critical or whose audience is a list without ours", async () => {
    // jose refuses to sign an unknown crit: made by hand.
    const payload = b64({ typ: "access", sub: "42", iss: issuer, aud: audience, exp: now() + 60 });
    const forged = `${b64({ alg: "HS256", crit: ["x"], x: 1 })}.${payload}`;
    const sig = createHmac("sha256", secret).update(forged).digest("base64url");
    await expectUnauthenticated([asBearer(`${forged}.${sig}`)], /invalid access token/);
    await expectUnauthenticated(
      [asBearer(await hs256({ aud: ["other", "another"] }))],
      /aud claim/,
    );
    const { user } = await service
      .client("grpc", [asBearer(await hs256({ aud: ["other", audience] }))])
      .getUser({ userId: 4n });
    assert.equal(user?.userId, 4n);
  });
});

describe("authentication with checkPrincipal", () => {
  const refused = new Set<string>();
  const checked: string[] = [];
  let guarded: Awaited<ReturnType<typeof startTestService>>;
  before(async () => {
    guarded = await startTestService(
      [
        createAuthenticationInterceptor({
          secret,
          issuer,
          audience,
          checkPrincipal(principal) {
            checked.push(principal.subject);
            if (principal.subject === "slow") {
              return new Promise((resolve, reject) =>
                setTimeout(
                  () =>
                    refused.has("slow")
                      ? reject(new ConnectError("slow is suspended", Code.PermissionDenied))
                      : resolve(),
                  5,
                ),
              );
            }
            if (refused.has(principal.subject)) {
              throw new ConnectError("this account is suspended", Code.PermissionDenied);
            }
            return undefined;
          },
        }),
      ],
      {
        createUser: (_, ctx) => ({
          user: { username: ctx.values.get(principalKey)?.subject ?? "anonymous" },
        }),
      },
    );
  });
  after(() => guarded.close());

  for (const protocol of protocols) {
    it(`refuses a remembered token once the check refuses its caller, over ${protocol}`, async () => {
      for (const subject of ["42", "slow"]) {
        refused.delete(subject);
        const client = guarded.client(protocol, [asBearer(await hs256({ sub: subject }))]);
        await client.getUser({ userId: 1n });
        refused.add(subject);
        const before = checked.length;
        await assert.rejects(client.getUser({ userId: 1n }), (err: unknown) => {
          assert.ok(err instanceof ConnectError);
          assert.equal(err.code, Code.PermissionDenied);
          assert.match(err.rawMessage, /suspended/);
          return true;
        });
        await assert.rejects(async () => {
          for await (const _ of client.streamUserActivities({ userId: 1n })) {
            // nothing arrives
          }
        }, /suspended/);
        await assert.rejects(client.batchUpdateUsers(messages([{ userId: 1n }])), /suspended/);
        assert.deepEqual(checked.slice(before), [subject, subject, subject]);
        // A public method answers a refused caller as anyone, without a principal.
        const { user } = await client.createUser({ username: "someone" });
        assert.equal(user?.username, "anonymous");
      }
    });
  }
});
