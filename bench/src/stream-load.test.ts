import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { GetUserRequestSchema } from "@keel/gen/user/v1/user_pb";
import { GrpcMessageCounter, grpcFrame, lengthPrefixed } from "./grpc-frame.ts";
import { runStreamLoad, type StreamLoadOptions } from "./stream-load.ts";

/**
 * A server that answers each request message with one message, then ends the call OK over gRPC
 * or Connect; on `/fail`, it ends a Connect call with an error after its answers instead.
 */
function echoServer(): http2.Http2Server {
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    const connect = headers["content-type"] === "application/connect+proto";
    const counter = new GrpcMessageCounter();
    stream.on("data", (chunk: Buffer) => counter.push(chunk));
    stream.on("end", () => {
      stream.respond(
        { ":status": 200, "content-type": String(headers["content-type"]) },
        { waitForTrailers: !connect },
      );
      const answer = grpcFrame(GetUserRequestSchema, { userId: 1n });
      for (let i = 0; i < counter.count; i++) stream.write(answer);
      if (!connect) {
        stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end();
        return;
      }
      const status = headers[":path"] === "/fail" ? { error: { code: "internal" } } : {};
      const end = lengthPrefixed(Buffer.from(JSON.stringify(status)));
      end[0] = 0x02;
      stream.end(end);
    });
  });
  return server;
}

describe("runStreamLoad", () => {
  const server = echoServer();
  let origin = "";
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  const options = (overrides: Partial<StreamLoadOptions>): StreamLoadOptions => ({
    origin,
    path: "/ok",
    bodyBase64: Buffer.concat(
      Array.from({ length: 5 }, () => grpcFrame(GetUserRequestSchema, { userId: 1n })),
    ).toString("base64"),
    headers: {},
    connections: 1,
    streamsPerConnection: 2,
    messagesPerStream: 5,
    endsItself: true,
    durationSeconds: 0.3,
    ...overrides,
  });

  for (const protocol of ["grpc", "connect"] as const) {
    it(`counts the calls that ended OK over ${protocol}, and their messages`, async () => {
      const result = await runStreamLoad(options({ protocol }));
      assert.equal(result.errors, 0, result.firstError);
      assert.ok(result.streams > 0);
      // Messages received count as they arrive: the two calls in flight at the end may add some.
      assert.ok(result.messages >= result.streams * 5, `${result.messages} messages`);
      assert.ok(result.messages <= (result.streams + 2) * 5, `${result.messages} messages`);
    });
  }

  it("counts the messages sent once their call is done, for client streaming", async () => {
    // Each call counts for twelve messages: the five it read as they arrive, seven when done.
    const result = await runStreamLoad(options({ protocol: "connect", messagesPerCall: 12 }));
    assert.equal(result.errors, 0, result.firstError);
    assert.ok(result.messages >= result.streams * 12, `${result.messages} messages`);
    assert.ok(result.messages <= result.streams * 12 + 2 * 5, `${result.messages} messages`);
  });

  it("counts a Connect call that ends with an error as an error", async () => {
    const result = await runStreamLoad(options({ protocol: "connect", path: "/fail" }));
    assert.equal(result.streams, 0);
    assert.ok(result.errors > 0);
    assert.equal(result.firstError, "Connect error internal: ");
  });

  it("counts a call with more messages than asked for as an error", async () => {
    const result = await runStreamLoad(options({ messagesPerStream: 4 }));
    assert.equal(result.streams, 0);
    assert.equal(result.firstError, "more than 4 messages");
  });
});
