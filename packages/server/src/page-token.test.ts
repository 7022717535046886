import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createOrderClient, createUserClient, type Protocol } from "@keel/clients";
import { decodePageToken, encodePageToken } from "./page-token.ts";
import { rejectsWith } from "./testing/rpc.ts";
import { startTestServer, type TestServer } from "./testing/test-server.ts";

const forge = (body: unknown) => Buffer.from(JSON.stringify(body)).toString("base64url");
const maxId = 2n ** 63n - 1n;

/** Either a valid id in int64 range or INVALID_ARGUMENT about the page token: nothing else. */
function decodesOrRefuses(token: string, filter: string): void {
  try {
    const id = decodePageToken(token, filter);
    assert.ok(id === undefined || (id >= 0n && id <= maxId), `decoded ${id} from ${token}`);
  } catch (err) {
    assert.ok(err instanceof ConnectError, `${token}: ${String(err)}`);
    assert.equal(err.code, Code.InvalidArgument);
    assert.match(err.rawMessage, /^invalid request: page_token: /);
  }
}

describe("page tokens", () => {
  it("round-trip every id up to the largest int64", () => {
    for (const id of [0n, 1n, 12345n, maxId]) {
      assert.equal(decodePageToken(encodePageToken(id, "f"), "f"), id);
    }
  });

  it("refuse an id beyond int64 as a token this service did not issue", () => {
    for (const a of [(maxId + 1n).toString(), "9999999999999999999"]) {
      assert.throws(
        () => decodePageToken(forge({ v: 1, a, f: "f" }), "f"),
        (err: unknown) =>
          err instanceof ConnectError &&
          err.code === Code.InvalidArgument &&
          /page_token: is not a token this service issued/.test(err.rawMessage),
      );
    }
  });

  it("answer anything forged, mangled or random with INVALID_ARGUMENT or a valid id", () => {
    const valid = encodePageToken(987654321n, "user=1;status=0");
    const shapes: unknown[] = [
      null,
      [],
      "x",
      { v: 1 },
      { v: 2, a: "1", f: "f" },
      { v: 1, a: 1, f: "f" },
      { v: 1, a: "-1", f: "f" },
      { v: 1, a: "1e3", f: "f" },
      { v: 1, a: "99999999999999999999", f: "f" },
      { v: 1, a: "1", f: 1 },
      { v: 1, a: "１", f: "f" },
    ];
    for (const shape of shapes) decodesOrRefuses(forge(shape), "f");
    for (let i = 0; i < 2000; i++) {
      decodesOrRefuses(randomBytes(i % 64).toString("base64url"), "f");
      // One character of a valid token changed: often still JSON, with a digit or key changed.
      const at = i % valid.length;
      const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
      const mangled =
        valid.slice(0, at) + alphabet[(i * 7) % alphabet.length] + valid.slice(at + 1);
      decodesOrRefuses(mangled, "user=1;status=0");
    }
    for (let digits = 1; digits <= 25; digits++) {
      decodesOrRefuses(forge({ v: 1, a: "9".repeat(digits), f: "f" }), "f");
    }
  });
});

describe("forged page tokens over the wire", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  const protocols: Protocol[] = ["grpc", "grpc-web", "connect"];
  for (const protocol of protocols) {
    it(`ListUsers and ListOrders refuse an id beyond int64 over ${protocol}`, async () => {
      const options = { baseUrl: server.url, protocol, token: server.adminToken };
      const users = createUserClient(options);
      const orders = createOrderClient(options);
      const huge = "9999999999999999999";
      await rejectsWith(
        users.listUsers({ pageToken: forge({ v: 1, a: huge, f: "status=0" }) }),
        Code.InvalidArgument,
        /^invalid request: page_token: /,
      );
      await rejectsWith(
        orders.listOrders({
          userId: 1n,
          pageToken: forge({ v: 1, a: huge, f: "user=1;status=0" }),
        }),
        Code.InvalidArgument,
        /^invalid request: page_token: /,
      );
    });
  }
});
