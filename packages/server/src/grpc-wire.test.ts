import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { respond, respondError, withStatus } from "./grpc-wire.ts";
import { PlainHeaders } from "./plain-headers.ts";
import { rawGrpcRequest } from "./testing/rpc.ts";

// A bare HTTP/2 server whose one route answers as the test in progress says.
let answer: (stream: http2.ServerHttp2Stream) => void = () => {};
let h2: http2.Http2Server;
let client: http2.ClientHttp2Session;
before(async () => {
  h2 = http2.createServer();
  h2.on("stream", (stream) => {
    stream.on("error", () => {});
    stream.resume();
    stream.on("end", () => answer(stream));
  });
  await new Promise<void>((resolve) => h2.listen(0, "127.0.0.1", resolve));
  client = http2.connect(`http://127.0.0.1:${(h2.address() as { port: number }).port}`);
});
after(async () => {
  await new Promise<void>((resolve) => client.close(() => resolve()));
  await new Promise<void>((resolve) => h2.close(() => resolve()));
});

const call = () => rawGrpcRequest(client, "/p", Buffer.alloc(0));

describe("response headers and trailers on the wire", () => {
  it("sends the handler's headers and trailers, every set-cookie of each", async () => {
    const header = new PlainHeaders();
    header.set("x-request-id", "r-1");
    header.append("set-cookie", "a=1");
    header.append("set-cookie", "b=2");
    const trailer = new Headers({ "x-trailer": "t" });
    trailer.append("set-cookie", "c=3");
    trailer.append("set-cookie", "d=4");
    answer = (stream) => respond(stream, header, withStatus(trailer, undefined), undefined);
    const { headers, trailers } = await call();
    assert.equal(headers[":status"], 200);
    assert.equal(headers["content-type"], "application/grpc");
    assert.equal(headers["x-request-id"], "r-1");
    assert.deepEqual(headers["set-cookie"], ["a=1", "b=2"]);
    assert.equal(trailers["grpc-status"], "0");
    assert.equal(trailers["x-trailer"], "t");
    assert.deepEqual(trailers["set-cookie"], ["c=3", "d=4"]);
  });

  it("puts an error's status, message and metadata into the trailers", async () => {
    const err = new ConnectError("no such user", Code.NotFound, { "x-why": "gone" });
    answer = (stream) => respondError(stream, err, new PlainHeaders(), new PlainHeaders());
    const { headers, trailers } = await call();
    assert.equal(headers[":status"], 200);
    assert.equal(trailers["grpc-status"], String(Code.NotFound));
    assert.equal(trailers["grpc-message"], "no%20such%20user");
    assert.equal(trailers["x-why"], "gone");
  });

  it("answers an error that is not a ConnectError as a bare internal error", async () => {
    answer = (stream) => respondError(stream, new Error("secret detail"), undefined, undefined);
    const { trailers } = await call();
    assert.equal(trailers["grpc-status"], String(Code.Internal));
    assert.equal(trailers["grpc-message"], "internal%20error");
  });
});
