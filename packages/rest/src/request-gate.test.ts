import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createEngine } from "@keel/engine";
import { createRestHandler } from "./rest-handler.ts";
import { LibraryService, serverStreamingMethod, unaryMethod } from "./testing/library.ts";
import { sendBody } from "./testing/send-body.ts";

/**
 * The engine's request gate runs on a REST call's headers before its body is read: a call it
 * refuses is answered at once, whatever its body does; one it lets through is read and served.
 */
describe("REST and the engine's request gate", () => {
  let reads = 0;
  const engine = createEngine({
    routes: (router) =>
      router
        .rpc(unaryMethod("UpdateBook"), (req) => {
          reads++;
          return (req as unknown as { book: { name: string } }).book;
        })
        .rpc(unaryMethod("GetBook"), () => ({}))
        .rpc(unaryMethod("ListBooks"), () => ({}))
        .rpc(unaryMethod("MoveBook"), () => ({}))
        .rpc(serverStreamingMethod("WatchBooks"), async function* () {}),
    requestGate: (ctx) => {
      if (ctx.requestHeader.get("authorization") !== "Bearer good") {
        throw new ConnectError("missing access token", Code.Unauthenticated);
      }
    },
  });
  const rest = createRestHandler({ engine, services: [LibraryService], openapi: false });
  const server = http.createServer((req, res) => void rest(req, res));
  let port = 0;
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** PATCHes a book, sending `body` and, unless `finish` is false, ending the request. */
  const patch = (authorization: string | undefined, body: string, finish: boolean) =>
    sendBody(
      `http://127.0.0.1:${port}`,
      {
        method: "PATCH",
        path: "/v1/shelves/1/books/2",
        headers: {
          "content-type": "application/json",
          ...(authorization === undefined ? {} : { authorization }),
        },
      },
      body,
      finish,
    );

  it("refuses a call on its headers while its body never ends", async () => {
    const refused = await patch(undefined, '{"pages": 1', false);
    assert.equal(refused.status, 401);
    assert.deepEqual(JSON.parse(refused.text).error, {
      code: 401,
      status: "UNAUTHENTICATED",
      message: "missing access token",
      details: [],
    });
    assert.equal(reads, 0);
  });

  it("reads and serves the body of a call it lets through", async () => {
    const served = await patch("Bearer good", '{"pages": 12}', true);
    assert.equal(served.status, 200, served.text);
    assert.deepEqual(JSON.parse(served.text), { name: "shelves/1/books/2", pages: 12 });
    assert.equal(reads, 1);
  });
});
