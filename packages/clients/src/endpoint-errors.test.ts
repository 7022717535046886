import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { classifyEndpointError, unsentError, wasNeverSent } from "./endpoint-errors.ts";

/** An error as connect-node reports a Node.js system error. */
function nodeError(code: string, connectCode: Code): ConnectError {
  const cause = Object.assign(new Error(`read ${code}`), { code });
  return new ConnectError(cause.message, connectCode, undefined, undefined, cause);
}

const url = "http://10.0.0.1:9090";

describe("endpoint errors", () => {
  it("turns a reset connection (ABORTED from connect-node) into UNAVAILABLE naming the endpoint", () => {
    const original = nodeError("ECONNRESET", Code.Aborted);
    const { error, connection } = classifyEndpointError(original, url);
    assert.equal(connection, true);
    assert.equal(error.code, Code.Unavailable);
    assert.equal(error.rawMessage, `${url}: read ECONNRESET`);
    assert.equal(error.cause, original);
    assert.equal(wasNeverSent(error), false, "the server may have seen the request");
  });

  it("counts a refused connection as never sent", () => {
    const { error, connection } = classifyEndpointError(
      nodeError("ECONNREFUSED", Code.Unavailable),
      url,
    );
    assert.equal(connection, true);
    assert.equal(wasNeverSent(error), true);
  });

  it("recognises connect-node's own connection messages", () => {
    const ping = new ConnectError("PING timed out", Code.Unavailable);
    assert.equal(classifyEndpointError(ping, url).connection, true);
  });

  it("takes a stream closed with CANCEL that the caller did not cancel for a dead connection", () => {
    // Node.js resets the streams of a destroyed session with CANCEL; connect-node says CANCELED.
    const reset = new ConnectError(
      "http/2 stream closed with error code CANCEL (0x8)",
      Code.Canceled,
    );
    const { error, connection } = classifyEndpointError(reset, url);
    assert.equal(connection, true);
    assert.equal(error.code, Code.Unavailable);
  });

  it("leaves errors the server sent alone", () => {
    const sent = new ConnectError("overloaded", Code.Unavailable);
    const { error, connection } = classifyEndpointError(sent, url);
    assert.equal(connection, false);
    assert.equal(error, sent);
    assert.equal(wasNeverSent(error), false);
  });

  it("counts a stream refused by HTTP/2 as never sent, without blaming the connection", () => {
    const refused = new ConnectError(
      "http/2 stream closed with error code REFUSED_STREAM (0x7)",
      Code.Unavailable,
    );
    const { error, connection } = classifyEndpointError(refused, url);
    assert.equal(connection, false);
    assert.equal(wasNeverSent(error), true);
  });

  it("makes errors for calls that could not be sent", () => {
    const error = unsentError("no endpoint is available");
    assert.equal(error.code, Code.Unavailable);
    assert.equal(wasNeverSent(error), true);
    assert.equal(wasNeverSent(new Error("plain")), false);
  });
});
