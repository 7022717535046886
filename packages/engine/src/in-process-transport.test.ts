import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  Code,
  ConnectError,
  createContextKey,
  createContextValues,
  type HandlerContext,
  type Interceptor,
} from "@connectrpc/connect";
import { createEngine } from "./engine.ts";
import { createFixtureClient, fixtureRoutes } from "./testing/fixture.ts";

const peerKey = createContextKey("", { description: "peer" });
const callerKey = createContextKey("", { description: "caller's address, client side" });

function setup() {
  const seen: HandlerContext[] = [];
  const server: { url: string; peer: string; auth: string | null }[] = [];
  const client: string[] = [];
  const recording: Interceptor = (next) => (req) => {
    server.push({
      url: req.url,
      peer: req.contextValues.get(peerKey),
      auth: req.header.get("authorization"),
    });
    return next(req);
  };
  const engine = createEngine({
    routes: fixtureRoutes(seen),
    interceptors: [recording],
    contextValues: (req) => createContextValues().set(peerKey, req.socket.remoteAddress ?? ""),
  });
  const transport = engine.inProcessTransport({
    interceptors: [
      (next) => (req) => {
        client.push(req.url);
        return next(req);
      },
    ],
    peer: (values) => values.get(callerKey),
  });
  return { seen, server, client, fixture: createFixtureClient(transport) };
}

async function* values(...texts: string[]) {
  for (const value of texts) yield { value };
}

describe("in-process transport", () => {
  it("runs every call kind through the server's interceptors and the client's", async () => {
    const { fixture, server, client, seen } = setup();
    const contextValues = createContextValues().set(callerKey, "203.0.113.7");
    const headers = { authorization: "Bearer t" };
    assert.equal((await fixture.unary({ value: "hi" }, { headers, contextValues })).value, "hi");
    const streamed: string[] = [];
    for await (const m of fixture.serverStream({ value: "count:2" }, { headers, contextValues }))
      streamed.push(m.value);
    assert.deepEqual(streamed, ["0", "1"]);
    assert.equal(
      (await fixture.clientStream(values("a", "b"), { headers, contextValues })).value,
      "a,b",
    );
    const echoed: string[] = [];
    for await (const m of fixture.bidi(values("x", "y"), { headers, contextValues }))
      echoed.push(m.value);
    assert.deepEqual(echoed, ["x", "y"]);
    const paths = ["Unary", "ServerStream", "ClientStream", "Bidi"].map(
      (m) => `/fixture.v1.FixtureService/${m}`,
    );
    assert.deepEqual(client, paths);
    assert.deepEqual(
      server,
      paths.map((url) => ({ url, peer: "203.0.113.7", auth: "Bearer t" })),
    );
    assert.deepEqual(
      seen.map((ctx) => [ctx.protocolName, ctx.signal.aborted]),
      paths.map(() => ["in-process", true]),
    );
  });

  it("answers errors as a network call would, and keeps the client's deadline", async () => {
    const { fixture } = setup();
    await assert.rejects(fixture.unary({ value: "error:NotFound:gone" }), (err) => {
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code, Code.NotFound);
      assert.equal(err.rawMessage, "gone");
      return true;
    });
    await assert.rejects(fixture.unary({ value: "plain-error" }), (err) => {
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code, Code.Internal);
      assert.equal(err.rawMessage, "internal error");
      return true;
    });
    await assert.rejects(fixture.unary({ value: "sleep:5000" }, { timeoutMs: 30 }), (err) => {
      assert.equal(ConnectError.from(err).code, Code.DeadlineExceeded);
      return true;
    });
  });

  it("copies messages both ways, so neither side sees the other change them", async () => {
    const { fixture } = setup();
    const request = { value: "mine" };
    const response = await fixture.unary(request);
    response.value = "changed";
    assert.equal(request.value, "mine");
  });
});
