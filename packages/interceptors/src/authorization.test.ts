import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { create, createFileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, file_google_protobuf_empty } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  createClient,
  createContextValues,
  type Interceptor,
} from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { GetOrderRequestSchema, OrderService } from "@keel/gen/order/v1/order_pb";
import { UserStatus } from "@keel/gen/user/v1/user_pb";
import { createAuthorizationInterceptor } from "./authorization.ts";
import { principalKey } from "./context.ts";
import type { ExtraPolicies } from "./policy.ts";
import { messages, protocols, startTestService } from "./testing/test-service.ts";

/** Test-only authentication: `x-test-principal: <user id>:<role>,<role>` becomes the principal. */
const testPrincipal: Interceptor = (next) => (req) => {
  const value = req.header.get("x-test-principal");
  if (value !== null) {
    const [id = "", roles = ""] = value.split(":");
    req.contextValues.set(principalKey, {
      subject: id,
      userId: BigInt(id),
      roles: roles === "" ? [] : roles.split(","),
      tokenId: undefined,
    });
  }
  return next(req);
};
const as =
  (principal: string): Interceptor =>
  (next) =>
  (req) => {
    req.header.set("x-test-principal", principal);
    return next(req);
  };

function isCode(code: Code) {
  return (err: unknown) => err instanceof ConnectError && err.code === code;
}

let service: Awaited<ReturnType<typeof startTestService>>;
before(async () => {
  service = await startTestService([testPrincipal, createAuthorizationInterceptor()]);
});
after(() => service.close());

describe("authorization interceptor", () => {
  for (const protocol of protocols) {
    it(`lets owners and admins read a user, nobody else, over ${protocol}`, async () => {
      assert.equal(
        (await service.client(protocol, [as("5:")]).getUser({ userId: 5n })).user?.userId,
        5n,
      );
      assert.equal(
        (await service.client(protocol, [as("9:admin")]).getUser({ userId: 5n })).user?.userId,
        5n,
      );
      await assert.rejects(
        service.client(protocol, [as("6:fulfillment")]).getUser({ userId: 5n }),
        (err: unknown) =>
          isCode(Code.PermissionDenied)(err) &&
          /acts on user 5 that is not yours; role admin can/.test((err as ConnectError).rawMessage),
      );
      await assert.rejects(
        service.client(protocol).getUser({ userId: 5n }),
        isCode(Code.Unauthenticated),
      );
    });

    it(`checks every message of a client stream over ${protocol}`, async () => {
      const mine = await service
        .client(protocol, [as("5:")])
        .batchUpdateUsers(messages([{ userId: 5n }, { userId: 5n }]));
      assert.equal(mine.updatedCount, 2);
      await assert.rejects(
        service
          .client(protocol, [as("5:")])
          .batchUpdateUsers(messages([{ userId: 5n }, { userId: 6n }])),
        isCode(Code.PermissionDenied),
      );
    });

    it(`lets anyone signed in follow a status but only an admin change it, over ${protocol}`, async () => {
      const follower = service.client(protocol, [as("5:")]);
      const seen = [];
      for await (const update of follower.syncUserStatus(
        messages([{ userId: 6n }, { userId: 7n }]),
      ))
        seen.push(update.userId);
      assert.deepEqual(seen, [6n, 7n]);
      // Not even their own status: a suspended user must not reactivate themselves.
      const echoed: bigint[] = [];
      await assert.rejects(
        async () => {
          for await (const update of follower.syncUserStatus(
            messages([{ userId: 5n }, { userId: 5n, status: UserStatus.ACTIVE }]),
          )) {
            echoed.push(update.userId);
          }
        },
        (err: unknown) =>
          isCode(Code.PermissionDenied)(err) &&
          (err as ConnectError).rawMessage ===
            "permission denied: only role admin may set status in user.v1.UserService/SyncUserStatus",
      );
      assert.deepEqual(echoed, [5n]);
      const admin: bigint[] = [];
      for await (const update of service
        .client(protocol, [as("9:admin")])
        .syncUserStatus(messages([{ userId: 6n, status: UserStatus.SUSPENDED }])))
        admin.push(update.userId);
      assert.deepEqual(admin, [6n]);
    });

    it(`lets owners update their profile in a batch but not their status, over ${protocol}`, async () => {
      const owner = service.client(protocol, [as("5:")]);
      const profile = { userId: 5n, user: { email: "five@example.com" } };
      // A status left at its zero value, or present but outside the mask, is not a change.
      const echoedStatus = {
        userId: 5n,
        user: { email: "five@example.com", status: UserStatus.SUSPENDED },
        updateMask: { paths: ["email"] },
      };
      assert.equal(
        (await owner.batchUpdateUsers(messages([profile, echoedStatus]))).updatedCount,
        2,
      );
      const changes = [
        { userId: 5n, user: { status: UserStatus.ACTIVE } },
        { userId: 5n, user: {}, updateMask: { paths: ["email", "status"] } },
      ];
      for (const change of changes) {
        await assert.rejects(
          owner.batchUpdateUsers(messages([profile, change])),
          (err: unknown) =>
            isCode(Code.PermissionDenied)(err) &&
            /only role admin may set user\.status in user\.v1\.UserService\/BatchUpdateUsers$/.test(
              (err as ConnectError).rawMessage,
            ),
        );
        const byAdmin = await service
          .client(protocol, [as("9:admin")])
          .batchUpdateUsers(messages([change]));
        assert.equal(byAdmin.updatedCount, 1);
      }
    });
  }

  it("checks a server stream's request", async () => {
    const received = [];
    for await (const a of service.client("grpc", [as("5:")]).streamUserActivities({ userId: 5n }))
      received.push(a);
    assert.equal(received.length, 3);
    await assert.rejects(async () => {
      for await (const _ of service
        .client("grpc", [as("6:")])
        .streamUserActivities({ userId: 5n })) {
        // nothing arrives
      }
    }, isCode(Code.PermissionDenied));
  });

  it("keeps admin-only methods and public methods as declared", async () => {
    await assert.rejects(
      service.client("grpc", [as("5:")]).listUsers({}),
      isCode(Code.PermissionDenied),
    );
    await service.client("grpc", [as("5:admin")]).listUsers({});
    await service.client("grpc").createUser({ username: "anyone" });
  });

  it("denies a method that declares no rule, even to admins, and honours rules given for it", async () => {
    const registry = createFileRegistry(
      create(FileDescriptorProtoSchema, {
        name: "norule/v1/norule.proto",
        package: "norule.v1",
        syntax: "proto3",
        dependency: ["google/protobuf/empty.proto"],
        service: [
          {
            name: "NoRuleService",
            method: [
              {
                name: "Call",
                inputType: ".google.protobuf.Empty",
                outputType: ".google.protobuf.Empty",
              },
            ],
          },
        ],
      }),
      () => file_google_protobuf_empty,
    );
    const desc = registry.getService("norule.v1.NoRuleService");
    const method = desc?.methods[0];
    assert.ok(desc && method);
    const cases: [ExtraPolicies, Code | undefined][] = [
      [{}, Code.PermissionDenied],
      [{ "norule.v1.NoRuleService": { public: true } }, undefined],
    ];
    for (const [policies, expected] of cases) {
      const server = http2.createServer(
        connectNodeAdapter({
          // A descriptor built at run time has no generated types; its one method answers empty.
          routes: (router) => router.rpc(method, (() => ({})) as never),
          interceptors: [testPrincipal, createAuthorizationInterceptor({ policies })],
        }),
      );
      const sessions = new Set<http2.ServerHttp2Session>();
      server.on("session", (s) => sessions.add(s));
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const client = createClient(
        desc,
        createGrpcTransport({
          baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
          interceptors: [as("1:admin")],
        }),
      );
      try {
        const call = (client as unknown as { call(req: object): Promise<unknown> }).call({});
        if (expected === undefined) await call;
        else
          await assert.rejects(
            call,
            (err: unknown) => isCode(expected)(err) && /declares no access rule/.test(String(err)),
          );
      } finally {
        for (const session of sessions) session.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    }
  });
});

describe("authorization of calls on orders", () => {
  const getOrder = OrderService.method.getOrder;
  /** GetOrder of order 7 as `principal`, through the interceptor alone; true when it reached the handler. */
  async function getOrderAs(
    principal: { userId: bigint; roles: string[] },
    options: Parameters<typeof createAuthorizationInterceptor>[0],
  ): Promise<boolean> {
    let reached = false;
    const next = async () => {
      reached = true;
      return { stream: false } as never;
    };
    const contextValues = createContextValues().set(principalKey, {
      subject: String(principal.userId),
      userId: principal.userId,
      roles: principal.roles,
      tokenId: undefined,
    });
    await createAuthorizationInterceptor(options)(next)({
      stream: false,
      service: OrderService,
      method: getOrder,
      requestMethod: "POST",
      url: "/order.v1.OrderService/GetOrder",
      signal: new AbortController().signal,
      header: new Headers(),
      contextValues,
      message: create(GetOrderRequestSchema, { orderId: 7n }),
    } as never);
    return reached;
  }
  const ownedBy5 = async (orderId: bigint) => (orderId === 7n ? 5n : undefined);

  it("lets the order's owner through, after looking the owner up", async () => {
    assert.equal(await getOrderAs({ userId: 5n, roles: [] }, { orderOwner: ownedBy5 }), true);
  });

  it("refuses another user with PERMISSION_DENIED naming the method", async () => {
    await assert.rejects(
      getOrderAs({ userId: 6n, roles: [] }, { orderOwner: ownedBy5 }),
      (err: unknown) =>
        isCode(Code.PermissionDenied)(err) &&
        /^permission denied: order\.v1\.OrderService\/GetOrder acts on an order that is not yours; role /.test(
          (err as ConnectError).rawMessage,
        ),
    );
  });

  it("lets a call on an order that does not exist reach the handler (which answers NOT_FOUND)", async () => {
    assert.equal(
      await getOrderAs({ userId: 6n, roles: [] }, { orderOwner: async () => undefined }),
      true,
    );
  });

  it("answers INTERNAL when no orderOwner was given for a rule that needs it", async () => {
    await assert.rejects(
      getOrderAs({ userId: 5n, roles: [] }, {}),
      (err: unknown) =>
        isCode(Code.Internal)(err) && /needs orderOwner/.test((err as ConnectError).rawMessage),
    );
  });
});
