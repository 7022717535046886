import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { createEngine } from "./engine.ts";
import { fixtureRoutes, frame } from "./testing/fixture.ts";

describe("what a finished call leaves on its stream", () => {
  // The stream lives on until the client has its trailers; a listener of the call left on it
  // would keep the call's state (signal, headers, request) alive with it, into the old generation.
  const events = ["data", "end", "close", "wantTrailers"] as const;

  async function listenersAfterCall(
    method: string,
    text: string,
  ): Promise<{ left: string[]; status: number }> {
    const engine = createEngine({ routes: fixtureRoutes() });
    let before: unknown[] = [];
    let served: http2.ServerHttp2Stream | undefined;
    const h2 = http2.createServer();
    h2.on("stream", (stream, headers) => {
      before = events.flatMap((e) => stream.listeners(e));
      served = stream;
      assert.ok(engine.handleStream(stream, headers));
    });
    await new Promise<void>((resolve) => h2.listen(0, "127.0.0.1", resolve));
    const client = http2.connect(`http://127.0.0.1:${(h2.address() as AddressInfo).port}`);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const stream = client.request({
          ":method": "POST",
          ":path": `/fixture.v1.FixtureService/${method}`,
          "content-type": "application/grpc",
          te: "trailers",
        });
        stream.on("error", reject);
        stream.on("trailers", (t) => resolve(Number(t["grpc-status"])));
        // Trailers-only: the status comes with the response headers.
        stream.on("response", (h) => {
          if (h["grpc-status"] !== undefined)
            stream.on("end", () => resolve(Number(h["grpc-status"])));
        });
        stream.resume();
        stream.end(frame(text));
      });
      // Node's own listener that destroys an ended stream is no business of the call's, nor the
      // engine's one function for every stream that sends the trailers held on it (Node asks for
      // them once), which holds nothing itself: what it held is let go once sent.
      const stream = served as http2.ServerHttp2Stream;
      const left = events.flatMap((e) =>
        stream
          .listeners(e)
          .filter(
            (fn) =>
              !before.includes(fn) &&
              fn.name !== "[kMaybeDestroy]" &&
              fn.name !== "sendHeldTrailers",
          )
          .map((fn) => `${e}: ${fn.name || "anonymous"}`),
      );
      for (const key of Object.getOwnPropertySymbols(stream)) {
        const value = (stream as unknown as Record<symbol, unknown>)[key];
        if (key.description === "keel trailers" && value !== undefined) left.push("held trailers");
      }
      return { left, status };
    } finally {
      client.close();
      await new Promise((resolve) => h2.close(resolve));
    }
  }

  for (const [method, text, status] of [
    ["Unary", "fine", 0],
    ["Unary", "error:NotFound:gone", Code.NotFound],
    ["ServerStream", "count:2", 0],
    ["ClientStream", "one", 0],
    ["Bidi", "one", 0],
  ] as const) {
    it(`takes its listeners off the stream: ${method} "${text}"`, async () => {
      const result = await listenersAfterCall(method, text);
      assert.equal(result.status, status);
      assert.deepEqual(result.left, []);
    });
  }
});
