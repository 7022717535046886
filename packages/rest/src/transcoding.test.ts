import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { createEngine } from "@keel/engine";
import { createRestHandler } from "./rest-handler.ts";
import { LibraryService, serverStreamingMethod, unaryMethod } from "./testing/library.ts";

type Book = { name: string; pages?: number; tags?: string[] };

/**
 * Transcoding of every kind of rule, against test.v1.LibraryService on a plain node:http server
 * that sends what `matches` claims to the REST handler: nested path fields, `**`, custom verbs and
 * methods, `body: "field"`, `response_body` and additional bindings.
 */
describe("transcoding", () => {
  const received: { method: string; message: unknown }[] = [];
  const recorder: Interceptor = (next) => async (req) => {
    received.push({ method: req.method.name, message: req.stream ? undefined : req.message });
    return next(req);
  };
  // Messages of a descriptor built at run time have no generated types: read them as plain shapes.
  const routes = (router: ConnectRouter) =>
    router
      .rpc(unaryMethod("GetBook"), (req) => ({ name: (req as unknown as Book).name }))
      .rpc(unaryMethod("UpdateBook"), (req) => (req as unknown as { book: Book }).book)
      .rpc(unaryMethod("ListBooks"), (req) => {
        const { parent, filter } = req as unknown as { parent: string; filter?: Book };
        return { books: [{ name: `${parent}/books/1`, tags: filter?.tags ?? [] }] };
      })
      .rpc(unaryMethod("MoveBook"), (req) => {
        const { name, destination } = req as unknown as { name: string; destination: string };
        return { name: `${destination}/books/${name.split("/").at(-1)}` };
      })
      .rpc(serverStreamingMethod("WatchBooks"), async function* () {
        yield { name: "shelves/1/books/1" };
        yield { name: "shelves/1/books/2" };
      });
  const engine = createEngine({ routes, interceptors: [recorder] });
  const rest = createRestHandler({ engine, services: [LibraryService] });
  const server = http.createServer((req, res) => {
    if (rest.matches(req.url ?? "/")) return void rest(req, res);
    res.writeHead(418).end();
  });
  let url = "";
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  async function send(method: string, path: string, body?: unknown) {
    const res = await fetch(url + path, {
      method,
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
    });
    return { status: res.status, type: res.headers.get("content-type"), text: await res.text() };
  }

  it("matches multi-segment variables, and ** through an additional binding", async () => {
    const get = await send("GET", "/v1/shelves/1/books/moby%20dick");
    assert.equal(get.status, 200, get.text);
    assert.deepEqual(JSON.parse(get.text), { name: "shelves/1/books/moby dick" });
    const deep = await send("GET", "/v1/books/a/b%2Fc/d");
    assert.deepEqual(JSON.parse(deep.text), { name: "a/b%2Fc/d" });
  });

  it('puts the body in the field of body: "field", around a nested path variable', async () => {
    const res = await send("PATCH", "/v1/shelves/1/books/2?update_mask=pages,tags", {
      name: "ignored",
      pages: 12,
      tags: ["sea"],
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(JSON.parse(res.text), { name: "shelves/1/books/2", pages: 12, tags: ["sea"] });
    const { message } = received.at(-1) ?? {};
    assert.deepEqual((message as { updateMask?: { paths: string[] } }).updateMask?.paths, [
      "pages",
      "tags",
    ]);
  });

  it("answers with the response_body field, nested query fields set", async () => {
    const res = await send("GET", "/v1/shelves/7/books?filter.tags=a&filter.tags=b&pageSize=5");
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(JSON.parse(res.text), [{ name: "shelves/7/books/1", tags: ["a", "b"] }]);
  });

  it("serves custom verbs and custom methods", async () => {
    const move = await send("POST", "/v1/shelves/1/books/2:move", { destination: "shelves/3" });
    assert.deepEqual(JSON.parse(move.text), { name: "shelves/3/books/2" });
    const wrongVerb = await send("POST", "/v1/shelves/1/books/2:burn", {});
    assert.equal(wrongVerb.status, 405);
    const watch = await send("SEARCH", "/v1/books:watch");
    assert.equal(watch.type, "application/x-ndjson");
    assert.deepEqual(
      watch.text
        .trimEnd()
        .split("\n")
        .map((line) => JSON.parse(line).name),
      ["shelves/1/books/1", "shelves/1/books/2"],
    );
  });

  it("leaves paths outside its routes to the rest of the server", async () => {
    assert.equal((await send("GET", "/v2/books")).status, 418);
    assert.equal((await send("GET", "/v1/elsewhere")).status, 404);
    assert.equal((await send("GET", "/openapi.json")).status, 200);
  });
});
