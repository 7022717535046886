import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { pino } from "pino";
import { startTestServer, type TestServer } from "./testing/test-server.ts";

// Issue 17, item 3: an error quoting a 4 MiB value was a 4 MiB grpc-message (the stream reset),
// a 4 MiB Connect body and an 8 MiB log line.
const huge = "A".repeat((4 << 20) - 256);

let server: TestServer;
const lines: string[] = [];
before(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      done();
    },
  });
  server = await startTestServer({ logger: pino({ level: "info" }, sink) });
});
after(() => server.stop());

function client(kind: "grpc" | "connect" | "grpc-web"): Client<typeof UserService> {
  const make = {
    grpc: createGrpcTransport,
    connect: createConnectTransport,
    "grpc-web": createGrpcWebTransport,
  }[kind];
  const token = server.adminToken;
  return createClient(
    UserService,
    make({
      baseUrl: server.url,
      httpVersion: "2",
      interceptors: [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${token}`);
          return next(req);
        },
      ],
    }),
  );
}

describe("errors quoting unbounded input", () => {
  for (const kind of ["grpc", "connect", "grpc-web"] as const) {
    it(`answers a 4 MiB field name over ${kind} with INVALID_ARGUMENT and a short message`, async () => {
      lines.length = 0;
      await assert.rejects(client(kind).getUser({ userId: 1n, fields: [huge] }), (err: unknown) => {
        assert.ok(err instanceof ConnectError, String(err));
        assert.equal(Code[err.code], "InvalidArgument", err.rawMessage.slice(0, 200));
        assert.ok(err.rawMessage.length <= 1024, `message of ${err.rawMessage.length} characters`);
        assert.match(
          err.rawMessage,
          /^invalid request: fields\[0\]: unknown user field "A{64}…" \(4194048 characters, cut\)/,
        );
        return true;
      });
      const logged = lines.filter((l) => l.includes('"finished call"'));
      assert.equal(logged.length, 1);
      for (const line of lines) assert.ok(line.length < 4096, `a log line of ${line.length} bytes`);
    });
  }

  it("bounds the error a REST query parameter raises", async () => {
    const res = await fetch(`${server.url}/api/v1/users?page_size=${"9".repeat(8000)}`, {
      headers: { authorization: `Bearer ${server.adminToken}` },
    });
    const text = await res.text();
    assert.equal(res.status, 400, text.slice(0, 300));
    assert.ok(text.length < 2048, `a body of ${text.length} bytes`);
    assert.match(text, /got \\"9{64}…\\" \(8000 characters, cut\)/);
  });
});
