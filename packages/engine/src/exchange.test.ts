import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { StreamExchange } from "./exchange.ts";

/**
 * Answers one request on a raw HTTP/2 stream with `answer`, and tells what the client got: the
 * response headers, the trailers, or the code of the reset that ended the stream.
 */
async function exchangeOnce(
  answer: (exchange: StreamExchange, stream: http2.ServerHttp2Stream) => void,
): Promise<{
  headers: http2.IncomingHttpHeaders | undefined;
  trailers: http2.IncomingHttpHeaders | undefined;
  rstCode: number;
}> {
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    stream.resume();
    stream.on("end", () => answer(new StreamExchange(stream, headers), stream));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  try {
    return await new Promise((resolve) => {
      let headers: http2.IncomingHttpHeaders | undefined;
      let trailers: http2.IncomingHttpHeaders | undefined;
      const req = client.request({ ":method": "POST", ":path": "/" });
      req.on("response", (h) => (headers = h));
      req.on("trailers", (t) => (trailers = t));
      req.on("error", () => {});
      req.resume();
      // Never answered: given up on, so that the test fails instead of hanging.
      const unanswered = setTimeout(() => client.destroy(), 5_000);
      req.on("close", () => {
        clearTimeout(unanswered);
        resolve({ headers, trailers, rstCode: req.rstCode ?? -1 });
      });
      req.end();
    });
  } finally {
    client.close();
    await new Promise((resolve) => server.close(resolve));
  }
}

describe("a raw HTTP/2 stream's answer", () => {
  it("leaves out the fields HTTP/2 forbids, in headers and trailers, and is answered", async () => {
    const got = await exchangeOnce((exchange) => {
      exchange.respond(200, ["connection", "close", "te", "gzip", "x-kept", "1"], false, true);
      exchange.end(Buffer.from("body"), { "transfer-encoding": "chunked", "x-trailer": "2" });
    });
    assert.equal(got.headers?.[":status"], 200);
    assert.equal(got.headers?.["x-kept"], "1");
    assert.equal(got.headers?.connection, undefined);
    assert.equal(got.headers?.te, undefined);
    assert.equal(got.trailers?.["x-trailer"], "2");
    assert.equal(got.trailers?.["transfer-encoding"], undefined);
    assert.equal(got.rstCode, http2.constants.NGHTTP2_NO_ERROR);
  });

  it("resets the stream with INTERNAL_ERROR when Node refuses its headers for another reason", async () => {
    const got = await exchangeOnce((exchange) => {
      exchange.respond(200, ["not a token", "x"], false, true);
      exchange.end(Buffer.from("body"), { "grpc-status": "0" });
    });
    assert.equal(got.headers, undefined);
    assert.equal(got.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
  });

  it("resets the stream with INTERNAL_ERROR when Node refuses its trailers for another reason", async () => {
    const got = await exchangeOnce((exchange) => {
      exchange.respond(200, ["x-kept", "1"], false, true);
      exchange.end(Buffer.from("body"), { "not a token": "x" });
    });
    assert.equal(got.headers?.["x-kept"], "1");
    assert.equal(got.trailers, undefined);
    assert.equal(got.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
  });

  it("takes one error listener, however many exchanges look at the stream", async () => {
    let listeners = -1;
    const got = await exchangeOnce((_exchange, stream) => {
      const again = new StreamExchange(stream, {});
      listeners = stream.listenerCount("error");
      again.respond(204, [], true);
    });
    assert.equal(got.headers?.[":status"], 204);
    assert.equal(listeners, 1);
  });
});
