import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  Code,
  ConnectError,
  createClient,
  createContextValues,
  createRouterTransport,
  type Interceptor,
} from "@connectrpc/connect";
import { UserService } from "@keel/gen/user/v1/user_pb";
import type { AuditEntry } from "./audit-log.ts";
import { peerKey, requestIdKey } from "./context.ts";
import { createIpAccess, type IpRules } from "./ip-access.ts";
import { messages } from "./testing/test-service.ts";

/** Test-only stand-in for the server's client address: the peer from a header. */
const peerFromHeader: Interceptor = (next) => (req) => {
  req.contextValues.set(peerKey, req.header.get("x-test-peer") ?? "");
  req.contextValues.set(requestIdKey, "req-1");
  return next(req);
};

function clientWith(rules: IpRules, audit: AuditEntry[] = []) {
  const access = createIpAccess({ rules, audit: { write: (entry) => audit.push(entry) } });
  const client = createClient(
    UserService,
    createRouterTransport(
      (router) =>
        router.service(UserService, {
          getUser: () => ({}),
          listUsers: () => ({}),
          batchUpdateUsers: async (requests) => {
            for await (const _ of requests);
            return {};
          },
        }),
      { router: { interceptors: [peerFromHeader, access.interceptor] } },
    ),
  );
  /** "ok" or the code of each call from `peer`: GetUser, ListUsers, BatchUpdateUsers. */
  const outcomes = async (peer: string) => {
    const headers = { "x-test-peer": peer };
    const calls = [
      client.getUser({}, { headers }),
      client.listUsers({}, { headers }),
      client.batchUpdateUsers(messages([{ userId: 1n }]), { headers }),
    ];
    return Promise.all(
      calls.map((call) =>
        call.then(
          () => "ok",
          (err: unknown) => Code[ConnectError.from(err).code],
        ),
      ),
    );
  };
  return { access, outcomes };
}

describe("IP access", () => {
  it("lets through only the allow list's clients, IPv4, IPv6 and IPv4-mapped", async () => {
    const { outcomes } = clientWith({ allow: ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"] });
    const all = ["ok", "ok", "ok"];
    const none = ["PermissionDenied", "PermissionDenied", "PermissionDenied"];
    assert.deepEqual(await outcomes("10.1.2.3"), all);
    assert.deepEqual(await outcomes("::ffff:10.1.2.3"), all);
    assert.deepEqual(await outcomes("2001:db8:1::5"), all);
    assert.deepEqual(await outcomes("192.0.2.7"), all);
    assert.deepEqual(await outcomes("192.0.2.8"), none);
    assert.deepEqual(await outcomes("2001:db9::1"), none);
    // Not an address (an obfuscated proxy identifier, an unknown peer): in no range.
    assert.deepEqual(await outcomes("_hidden"), none);
    assert.deepEqual(await outcomes(""), none);
  });

  it("refuses the deny list's clients even inside the allow list", async () => {
    const { outcomes } = clientWith({ allow: ["10.0.0.0/8"], deny: ["10.6.0.0/16", "fd00::/8"] });
    assert.deepEqual(await outcomes("10.5.0.1"), ["ok", "ok", "ok"]);
    assert.deepEqual(await outcomes("10.6.0.1"), [
      "PermissionDenied",
      "PermissionDenied",
      "PermissionDenied",
    ]);
    const open = clientWith({ deny: ["fd00::/8"] });
    assert.deepEqual(await open.outcomes("fd12::1"), [
      "PermissionDenied",
      "PermissionDenied",
      "PermissionDenied",
    ]);
    assert.deepEqual(await open.outcomes("_hidden"), ["ok", "ok", "ok"]);
  });

  it("applies a method's own lists: its allow replaces the global one, its deny adds", async () => {
    const { outcomes } = clientWith({
      allow: ["10.0.0.0/8"],
      deny: ["10.9.0.0/16"],
      methods: {
        "user.v1.UserService/ListUsers": { allow: ["192.168.0.0/16"] },
        "user.v1.UserService/BatchUpdateUsers": { deny: ["10.1.0.0/16"] },
      },
    });
    assert.deepEqual(await outcomes("10.1.0.1"), ["ok", "PermissionDenied", "PermissionDenied"]);
    assert.deepEqual(await outcomes("10.2.0.1"), ["ok", "PermissionDenied", "ok"]);
    assert.deepEqual(await outcomes("192.168.1.1"), ["PermissionDenied", "ok", "PermissionDenied"]);
    // The global deny list holds for every method.
    assert.deepEqual(await outcomes("10.9.0.1"), [
      "PermissionDenied",
      "PermissionDenied",
      "PermissionDenied",
    ]);
  });

  it("says which method and address were refused, and audits the refusal", async () => {
    const audit: AuditEntry[] = [];
    const { outcomes } = clientWith({ deny: ["203.0.113.0/24"] }, audit);
    await outcomes("203.0.113.9");
    assert.equal(audit.length, 3);
    const entry = audit.find((e) => e.method === "user.v1.UserService/GetUser");
    assert.deepEqual(entry, {
      time: entry?.time,
      method: "user.v1.UserService/GetUser",
      principal: null,
      peer: "203.0.113.9",
      request_id: "req-1",
      outcome: "PermissionDenied",
      targets: { user_ids: [], order_ids: [] },
      error:
        "calls to user.v1.UserService/GetUser are not accepted from this address (203.0.113.9)",
    });
    assert.deepEqual(audit.map((e) => e.method).sort(), [
      "user.v1.UserService/BatchUpdateUsers",
      "user.v1.UserService/GetUser",
      "user.v1.UserService/ListUsers",
    ]);
    await outcomes("203.0.114.9");
    assert.equal(audit.length, 3, "calls let through are not audited here");
  });

  it("refuses in the request gate too, from the call's context values", () => {
    const access = createIpAccess({ rules: { deny: ["10.0.0.0/8"] } });
    const gate = (peer: string) =>
      access.gate({
        method: UserService.method.getUser,
        values: createContextValues().set(peerKey, peer),
      });
    assert.throws(
      () => gate("10.1.1.1"),
      (err: unknown) =>
        err instanceof ConnectError &&
        err.code === Code.PermissionDenied &&
        err.rawMessage ===
          "calls to user.v1.UserService/GetUser are not accepted from this address (10.1.1.1)",
    );
    assert.equal(gate("11.1.1.1"), undefined);
  });

  it("applies new rules from the next call on", async () => {
    const { access, outcomes } = clientWith({ deny: ["10.0.0.0/8"] });
    assert.deepEqual((await outcomes("10.0.0.1"))[0], "PermissionDenied");
    access.update({ allow: ["10.0.0.0/8"] });
    assert.deepEqual(await outcomes("10.0.0.1"), ["ok", "ok", "ok"]);
    assert.deepEqual((await outcomes("11.0.0.1"))[0], "PermissionDenied");
  });

  it("refuses bad rules when made or updated, keeping the rules in force", async () => {
    assert.throws(
      () => createIpAccess({ rules: { allow: ["10.0.0.0/33"] } }),
      /^Error: IP rules: "10.0.0.0\/33" is not an address or CIDR range .*prefix length must be 0 to 32$/,
    );
    assert.throws(
      () => createIpAccess({ rules: { methods: { GetUser: { deny: ["10.0.0.1"] } } } }),
      /method "GetUser" is not of the form/,
    );
    const { access, outcomes } = clientWith({ deny: ["10.0.0.0/8"] });
    assert.throws(() => access.update({ deny: ["not-an-address"] }), /not-an-address/);
    assert.deepEqual((await outcomes("10.0.0.1"))[0], "PermissionDenied");
  });
});
