import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { runCli } from "./testing/run-cli.ts";
import { type ServerProcess, startServerProcess } from "./testing/server-process.ts";

describe("keel list and keel describe", () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServerProcess();
  });

  it("lists the services the server reflects, then one service's methods", async () => {
    const services = await runCli(["list", "--url", server.url]);
    assert.equal(services.code, 0, services.stderr);
    assert.equal(
      services.stdout,
      [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "order.v1.OrderService",
        "user.v1.UserService",
        "",
      ].join("\n"),
    );
    const methods = await runCli(["list", "order.v1.OrderService", "--url", server.url]);
    assert.equal(methods.code, 0, methods.stderr);
    assert.deepEqual(
      methods.stdout.trim().split("\n"),
      [
        "CreateOrder",
        "GetOrder",
        "ListOrders",
        "CancelOrder",
        "PayOrder",
        "ShipOrder",
        "UpdateShipment",
        "TrackOrder",
      ].map((m) => `order.v1.OrderService.${m}`),
    );
  });

  it("describes a service, a method, a message, a field and an enum in protobuf syntax", async () => {
    const describe = (symbol: string) => runCli(["describe", symbol, "--url", server.url]);
    const [service, method, message, field, enumType, value] = await Promise.all([
      describe("user.v1.UserService"),
      describe("order.v1.OrderService/TrackOrder"),
      describe("user.v1.User"),
      describe("user.v1.User.metadata"),
      describe("order.v1.OrderStatus"),
      describe("user.v1.USER_STATUS_SUSPENDED"),
    ]);
    for (const result of [service, method, message, field, enumType, value]) {
      assert.equal(result.code, 0, result.stderr);
    }
    assert.match(service.stdout, /^user\.v1\.UserService is a service:\nservice UserService \{\n/);
    assert.match(
      service.stdout,
      /^ {2}rpc SyncUserStatus\(stream user\.v1\.UserStatusUpdate\) returns \(stream user\.v1\.UserStatusUpdate\);$/m,
    );
    assert.match(
      service.stdout,
      /^ {2}rpc BatchUpdateUsers\(stream user\.v1\.UpdateUserRequest\) returns \(user\.v1\.BatchUpdateUsersResponse\);$/m,
    );
    assert.equal(
      method.stdout,
      "order.v1.OrderService.TrackOrder is a method:\nrpc TrackOrder(order.v1.TrackOrderRequest) returns (stream order.v1.TrackOrderResponse);\n",
    );
    assert.equal(
      message.stdout,
      [
        "user.v1.User is a message:",
        "message User {",
        "  int64 user_id = 1;",
        "  string username = 2;",
        "  string email = 3;",
        "  user.v1.UserStatus status = 4;",
        "  google.protobuf.Timestamp created_at = 5;",
        "  google.protobuf.Timestamp updated_at = 6;",
        "  repeated string tags = 7;",
        "  map<string, string> metadata = 8;",
        "}",
        "",
      ].join("\n"),
    );
    assert.equal(
      field.stdout,
      "user.v1.User.metadata is a field:\nmap<string, string> metadata = 8;\n",
    );
    assert.match(
      enumType.stdout,
      /^order\.v1\.OrderStatus is an enum:\nenum OrderStatus \{\n {2}ORDER_STATUS_UNSPECIFIED = 0;\n/,
    );
    assert.match(enumType.stdout, /^ {2}ORDER_STATUS_CANCELLED = 5;\n\}\n$/m);
    assert.equal(
      value.stdout,
      "user.v1.UserStatus.USER_STATUS_SUSPENDED is an enum value:\nUSER_STATUS_SUSPENDED = 3;\n",
    );
  });

  it("says when the server knows no such symbol (exit 1), and asks for one (exit 2)", async () => {
    const [unknown, missing, extra] = await Promise.all([
      runCli(["describe", "user.v1.Nothing", "--url", server.url]),
      runCli(["describe", "--url", server.url]),
      runCli(["list", "a", "b", "--url", server.url]),
    ]);
    assert.equal(unknown.code, 1);
    assert.equal(
      unknown.stderr,
      'keel describe: the server knows no symbol "user.v1.Nothing"; keel list names its services, keel list SERVICE their methods\n',
    );
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^keel: describe: name the symbol to describe\n/);
    assert.equal(extra.code, 2);
    assert.match(extra.stderr, /^keel: list: unexpected argument "b": at most 1 allowed\n/);
  });

  it("exits 1 naming the problem when nothing answers", async () => {
    const result = await runCli(["list", "--url", "http://127.0.0.1:1"]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^keel list: \[unavailable\]/);
  });
});
