import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { createAuthenticationInterceptor } from "./authentication.ts";
import { type Principal, principalKey } from "./context.ts";
import { messages, protocols, startTestService } from "./testing/test-service.ts";

const secret = new TextEncoder().encode("a-test-secret-of-at-least-32-bytes!!");
const machine: Principal = {
  subject: "apikey:k1",
  userId: undefined,
  roles: ["fulfillment"],
  tokenId: "k1",
};

/** Keys "keel_good" (at once) and "keel_slow" (after a read) are known; others are refused. */
function authenticate(key: string): Principal | Promise<Principal> {
  if (key === "keel_good") return machine;
  if (key === "keel_slow") return Promise.resolve(machine);
  throw new ConnectError("unknown API key", Code.Unauthenticated);
}

const headers =
  (values: Record<string, string>): Interceptor =>
  (next) =>
  (req) => {
    for (const [name, value] of Object.entries(values)) req.header.set(name, value);
    return next(req);
  };

describe("authentication with API keys", () => {
  let service: Awaited<ReturnType<typeof startTestService>>;
  let without: Awaited<ReturnType<typeof startTestService>>;
  before(async () => {
    const options = { secret, issuer: "keel", audience: "keel" };
    service = await startTestService([
      createAuthenticationInterceptor({
        ...options,
        apiKeys: { prefix: "keel_", authenticate },
      }),
    ]);
    without = await startTestService([createAuthenticationInterceptor(options)]);
  });
  after(async () => {
    await service.close();
    await without.close();
  });

  it("puts the key's caller in the context, from x-api-key or a bearer key, for every call kind", async () => {
    for (const protocol of protocols) {
      const credentials: Record<string, string>[] = [
        { "x-api-key": "keel_good" },
        { "x-api-key": "keel_slow" },
        { authorization: "Bearer keel_good" },
        { authorization: "Bearer keel_slow" },
      ];
      for (const sent of credentials) {
        service.seen.length = 0;
        const client = service.client(protocol, [headers(sent)]);
        await client.getUser({ userId: 1n });
        await client.batchUpdateUsers(messages([{ userId: 1n }]));
        for await (const _ of client.streamUserActivities({ userId: 1n }));
        assert.deepEqual(
          service.seen.map((call) => call.ctx.values.get(principalKey)),
          [machine, machine, machine],
          `${protocol} ${JSON.stringify(sent)}`,
        );
      }
    }
  });

  it("refuses an unknown key, two credentials at once, and keys where none are accepted", async () => {
    const outcome = (client: ReturnType<typeof service.client>) =>
      client.getUser({ userId: 1n }).then(
        () => "ok",
        (err: unknown) =>
          `${Code[ConnectError.from(err).code]}: ${ConnectError.from(err).rawMessage}`,
      );
    assert.equal(
      await outcome(service.client("grpc", [headers({ "x-api-key": "keel_bad" })])),
      "Unauthenticated: unknown API key",
    );
    assert.equal(
      await outcome(service.client("grpc", [headers({ authorization: "Bearer keel_bad" })])),
      "Unauthenticated: unknown API key",
    );
    assert.equal(
      await outcome(
        service.client("grpc", [
          headers({ "x-api-key": "keel_good", authorization: "Bearer keel_good" }),
        ]),
      ),
      "Unauthenticated: send one credential: `x-api-key` or `authorization`, not both",
    );
    assert.equal(
      await outcome(without.client("grpc", [headers({ "x-api-key": "keel_good" })])),
      "Unauthenticated: API keys are not accepted here; send `authorization: Bearer <access token>`",
    );
  });

  it("checks keys in the request gate too, on the headers alone", async () => {
    const authentication = createAuthenticationInterceptor({
      secret,
      issuer: "keel",
      audience: "keel",
      apiKeys: { prefix: "keel_", authenticate },
    });
    const gate = (
      headers: Record<string, string>,
      method: DescMethod = UserService.method.getUser,
    ) => authentication.gate({ method, requestHeader: new Headers(headers) });
    assert.equal(gate({ "x-api-key": "keel_good" }), undefined);
    assert.equal(gate({ authorization: "Bearer keel_good" }), undefined);
    await gate({ "x-api-key": "keel_slow" });
    assert.throws(() => gate({ "x-api-key": "keel_bad" }), /unknown API key/);
    assert.throws(
      () => gate({ "x-api-key": "keel_good", authorization: "Bearer keel_good" }),
      /send one credential/,
    );
    // A public method is the interceptor's to decide: the gate lets it through.
    assert.equal(gate({ "x-api-key": "keel_bad" }, UserService.method.login), undefined);
  });

  it("lets a public method through with a bad key, as anonymous", async () => {
    service.seen.length = 0;
    const client = without.client("grpc", [headers({ "x-api-key": "keel_bad" })]);
    const { accessToken } = await client.login({ username: "u", password: "p" });
    assert.equal(accessToken, "a");
  });
});
