import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  ScalarType,
} from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { createUserClient } from "@keel/clients";
import { BadRequestSchema } from "@keel/gen/errdetails/v1/errdetails_pb";
import { OrderService } from "@keel/gen/order/v1/order_pb";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { type Store, StoreError } from "@keel/store";
import { openTestPostgresStore, postgresSkipReason } from "@keel/store/testing";
import { iterate } from "./testing/rpc.ts";
import { startTestServer, type TestServer } from "./testing/test-server.ts";

/**
 * A request of `desc` with a NUL in every text it can hold (strings, repeated strings, map keys
 * and values, nested messages), and the proto path of each.
 */
function nulEverywhere(
  desc: DescMessage,
  prefix = "",
  depth = 0,
): { init: Record<string, unknown>; paths: string[] } {
  const init: Record<string, unknown> = {};
  const paths: string[] = [];
  const at = (name: string) => (prefix === "" ? name : `${prefix}.${name}`);
  for (const field of desc.fields) {
    if (field.oneof !== undefined) continue;
    const path = at(field.name);
    if (field.fieldKind === "scalar" && field.scalar === ScalarType.STRING) {
      init[field.localName] = "x\0";
      paths.push(path);
    } else if (field.fieldKind === "list" && field.listKind === "scalar") {
      if (field.scalar !== ScalarType.STRING) continue;
      init[field.localName] = ["ok", "x\0"];
      paths.push(`${path}[1]`);
    } else if (field.fieldKind === "map" && field.mapKind === "scalar") {
      if (field.mapKey !== ScalarType.STRING || field.scalar !== ScalarType.STRING) continue;
      init[field.localName] = { "k\0": "v", ok: "x\0" };
      paths.push(path, `${path}["ok"]`);
    } else if (field.fieldKind === "message" && depth < 3) {
      const nested = nulEverywhere(field.message, path, depth + 1);
      if (nested.paths.length === 0) continue;
      init[field.localName] = nested.init;
      paths.push(...nested.paths);
    } else if (field.fieldKind === "list" && field.listKind === "message" && depth < 3) {
      const nested = nulEverywhere(field.message, `${path}[0]`, depth + 1);
      if (nested.paths.length === 0) continue;
      init[field.localName] = [nested.init];
      paths.push(...nested.paths);
    }
  }
  return { init, paths };
}

/** Calls `method` with `message` whatever its kind; the first response or the error. */
async function call(
  transport: Transport,
  service: DescService,
  method: DescMethod,
  message: Record<string, unknown>,
  token: string,
): Promise<unknown> {
  const client = createClient(service, transport) as unknown as Record<
    string,
    (input: unknown, options: object) => unknown
  >;
  const options = { headers: { authorization: `Bearer ${token}` } };
  const fn = client[method.localName] as (input: unknown, options: object) => unknown;
  const input = create(method.input, message);
  switch (method.methodKind) {
    case "unary":
      return fn(input, options);
    case "client_streaming":
      return fn(iterate([input]), options);
    case "server_streaming":
    case "bidi_streaming": {
      const stream = fn(
        method.methodKind === "bidi_streaming" ? iterate([input]) : input,
        options,
      ) as AsyncIterable<unknown>;
      for await (const first of stream) return first;
      return undefined;
    }
  }
}

const skip = await postgresSkipReason();
const itemized = new Set(["BatchUpdateUsers", "UpdateShipment"]);

describe("a NUL character in any text of any request, on PostgreSQL", {
  skip: skip ?? false,
}, () => {
  let server: TestServer;
  let store: Store;
  before(async () => {
    store = await openTestPostgresStore();
    server = await startTestServer({ store });
  });
  after(() => server.stop());

  const transports: Record<string, (baseUrl: string) => Transport> = {
    grpc: (baseUrl) => createGrpcTransport({ baseUrl }),
    "grpc-web": (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "2" }),
    connect: (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "2" }),
  };
  for (const [protocol, transportFor] of Object.entries(transports)) {
    for (const service of [UserService, OrderService]) {
      for (const method of service.methods) {
        const { init, paths } = nulEverywhere(method.input);
        if (paths.length === 0) continue;
        it(`${service.name}/${method.name} over ${protocol}: INVALID_ARGUMENT naming ${paths.join(", ")}`, async () => {
          const outcome = await call(
            transportFor(server.url),
            service,
            method,
            init,
            server.adminToken,
          ).then(
            (response) => response,
            (err: unknown) => ConnectError.from(err),
          );
          if (itemized.has(method.name)) {
            // One report per bad message, in the response, like any other per-message failure.
            const errors = (outcome as { errors: string[] }).errors;
            assert.equal(errors.length, 1, String(outcome));
            for (const path of paths) {
              const named = [`${path}: must not`, `${path}: keys must not`].map(
                (start) => `${start} contain the NUL character`,
              );
              assert.ok(
                named.some((text) => errors[0]?.includes(text)),
                `${path} in ${errors[0]}`,
              );
            }
            return;
          }
          assert.ok(outcome instanceof ConnectError, `expected an error, got ${String(outcome)}`);
          assert.equal(Code[outcome.code], "InvalidArgument", outcome.message);
          const named = outcome
            .findDetails(BadRequestSchema)
            .flatMap((d) => d.fieldViolations)
            .filter((v) => v.description.includes("NUL character"))
            .map((v) => v.field);
          assert.deepEqual(named.sort(), [...paths].sort());
        });
      }
    }
  }

  it("reports a batch update with a NUL among good ones like any failed update, keeping the rest", async () => {
    const users = createUserClient({ baseUrl: server.url, token: server.adminToken });
    const made = [];
    for (const name of ["nul_a", "nul_b", "nul_c"]) {
      const { user } = await users.createUser({
        username: name,
        email: `${name}@example.com`,
        password: "correct horse battery",
      });
      made.push(user?.userId ?? 0n);
    }
    const [a, b, c] = made as [bigint, bigint, bigint];
    const result = await users.batchUpdateUsers(
      iterate([
        { userId: a, user: { tags: ["first"] } },
        { userId: b, user: { metadata: { team: "bad\0" } } },
        { userId: c, user: { tags: ["third"] } },
      ]),
    );
    assert.equal(result.updatedCount, 2);
    assert.deepEqual(result.errors, [
      `update #2 (user_id=${b}): invalid request: user.metadata["team"]: must not contain the NUL character (U+0000)`,
    ]);
    assert.deepEqual((await users.getUser({ userId: a })).user?.tags, ["first"]);
    assert.deepEqual((await users.getUser({ userId: c })).user?.tags, ["third"]);
    assert.deepEqual((await users.getUser({ userId: b })).user?.metadata, {});
  });

  it("answers a NUL the database refuses with INVALID_ARGUMENT, not INTERNAL, should one get past", async () => {
    await assert.rejects(
      store.users.update(1n, { tags: ["x\0"] }),
      (err: unknown) => err instanceof StoreError && err.kind === "invalid_argument",
    );
  });
});
