import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { runOpenLoop } from "./open-loop.ts";

describe("runOpenLoop", () => {
  // gRPC calls end with grpc-status 0 in the trailers; Connect calls to /missing get HTTP 404.
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    stream.resume();
    stream.on("end", () => {
      if (headers["content-type"] === "application/grpc") {
        stream.respond({ ":status": 200 }, { waitForTrailers: true });
        stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end();
      } else {
        stream.respond({ ":status": headers[":path"] === "/missing" ? 404 : 200 });
        stream.end("{}");
      }
    });
  });
  let baseUrl = "";
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  const run = (path: string, contentType?: string) =>
    runOpenLoop({
      baseUrl,
      path,
      body: Buffer.from("{}"),
      ...(contentType === undefined ? {} : { contentType }),
      rate: 200,
      connections: 2,
      seconds: 0.25,
      timeoutMs: 1000,
    });

  it("counts gRPC calls by their grpc-status", async () => {
    const result = await run("/ok");
    assert.ok(result.started > 0);
    assert.deepEqual([...result.byStatus], [["0", result.started]]);
    assert.equal(result.okLatenciesMs.length, result.started);
  });

  it("counts a Connect call's HTTP 200 as OK, and names any other status", async () => {
    const ok = await run("/ok", "application/json");
    assert.deepEqual([...ok.byStatus], [["0", ok.started]]);
    const missing = await run("/missing", "application/json");
    assert.deepEqual([...missing.byStatus], [["HTTP 404", missing.started]]);
    assert.equal(missing.okLatenciesMs.length, 0);
  });
});
