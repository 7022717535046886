import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { createFixtureClient, rawCall, startEngineServer } from "./testing/fixture.ts";

describe("admit", () => {
  it("refuses a call on its method alone, in its protocol: no interceptor, no handler, no body read", async () => {
    const handlerSeen: HandlerContext[] = [];
    const chainSaw: string[] = [];
    const asked: string[] = [];
    const gateSeen: string[] = [];
    let shedding = true;
    const server = await startEngineServer({
      seen: handlerSeen,
      admit: (method: DescMethod) => {
        asked.push(method.name);
        if (!shedding) return undefined;
        return new ConnectError("overloaded: try again", Code.ResourceExhausted, {
          "retry-after": "1",
        });
      },
      requestGate: (ctx) => void gateSeen.push(ctx.method.name),
      interceptors: [(next) => (req) => (chainSaw.push(req.method.name), next(req))],
    });
    try {
      // A body that never ends: the answer comes from the headers alone.
      const prefix = Buffer.alloc(5);
      prefix.writeUInt32BE(1000, 1);
      const raw = await rawCall(server.url, "/fixture.v1.FixtureService/Unary", {}, prefix, {
        keepOpen: true,
      });
      assert.equal(raw.trailers["grpc-status"], String(Code.ResourceExhausted));
      assert.equal(
        decodeURIComponent(String(raw.trailers["grpc-message"])),
        "overloaded: try again",
      );
      assert.equal(raw.trailers["retry-after"], "1");
      const transports = {
        grpc: createGrpcTransport({ baseUrl: server.url }),
        "grpc-web": createGrpcWebTransport({ baseUrl: server.url, httpVersion: "2" }),
        connect: createConnectTransport({ baseUrl: server.url, httpVersion: "2" }),
      };
      for (const [name, transport] of Object.entries(transports)) {
        const err = await createFixtureClient(transport)
          .unary({ value: "in" })
          .then(
            () => undefined,
            (e: unknown) => ConnectError.from(e),
          );
        assert.equal(err?.code, Code.ResourceExhausted, name);
        assert.equal(err?.rawMessage, "overloaded: try again", name);
        assert.equal(err?.metadata.get("retry-after"), "1", name);
      }
      assert.deepEqual(asked, ["Unary", "Unary", "Unary", "Unary"]);
      assert.deepEqual([handlerSeen.length, chainSaw.length, gateSeen.length], [0, 0, 0]);
      // Admitted, the call takes its usual way.
      shedding = false;
      const echoed = await createFixtureClient(transports.connect).unary({ value: "in" });
      assert.equal(echoed.value, "in");
      assert.deepEqual([handlerSeen.length, chainSaw, gateSeen], [1, ["Unary"], ["Unary"]]);
    } finally {
      await server.close();
    }
  });
});
