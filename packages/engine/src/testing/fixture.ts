import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create, createFileRegistry, type DescService } from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  file_google_protobuf_wrappers,
  MethodOptions_IdempotencyLevel,
} from "@bufbuild/protobuf/wkt";
import {
  type CallOptions,
  Code,
  ConnectError,
  type ConnectRouter,
  createClient,
  type HandlerContext,
  type Transport,
} from "@connectrpc/connect";
import { createEngine, type EngineOptions } from "../engine.ts";

/**
 * A deterministic service of every call kind, on `google.protobuf.StringValue` messages, made at
 * run time (no generated code): what the engine's tests, and its comparison with connect-node's
 * adapter, call.
 */
export const FixtureService: DescService = (() => {
  const sv = ".google.protobuf.StringValue";
  const registry = createFileRegistry(
    create(FileDescriptorProtoSchema, {
      name: "fixture/v1/fixture.proto",
      package: "fixture.v1",
      syntax: "proto3",
      dependency: ["google/protobuf/wrappers.proto"],
      service: [
        {
          name: "FixtureService",
          method: [
            {
              name: "Unary",
              inputType: sv,
              outputType: sv,
              options: { idempotencyLevel: MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS },
            },
            { name: "ServerStream", inputType: sv, outputType: sv, serverStreaming: true },
            { name: "ClientStream", inputType: sv, outputType: sv, clientStreaming: true },
            {
              name: "Bidi",
              inputType: sv,
              outputType: sv,
              clientStreaming: true,
              serverStreaming: true,
            },
          ],
        },
      ],
    }),
    () => file_google_protobuf_wrappers,
  );
  const service = registry.getService("fixture.v1.FixtureService");
  if (service === undefined) throw new Error("fixture service missing");
  return service;
})();

type Value = { value: string };

/** The fixture's client, typed (the descriptor is made at run time, so connect cannot type it). */
export interface FixtureClient {
  unary(req: Value, options?: CallOptions): Promise<Value>;
  serverStream(req: Value, options?: CallOptions): AsyncIterable<Value>;
  clientStream(reqs: AsyncIterable<Value>, options?: CallOptions): Promise<Value>;
  bidi(reqs: AsyncIterable<Value>, options?: CallOptions): AsyncIterable<Value>;
}

export function createFixtureClient(transport: Transport): FixtureClient {
  return createClient(FixtureService, transport) as unknown as FixtureClient;
}

/**
 * What a request's text makes the handler do: "error:<Code name>:<message>" throws that error,
 * "plain-error" throws a plain Error, "sleep:<ms>" waits (until the call's signal aborts),
 * "count:<n>" (server stream) sends n messages; anything else is echoed. Every call records the
 * handler context it got in `seen`.
 */
export function fixtureRoutes(seen: HandlerContext[] = []) {
  const act = async (text: string, ctx: HandlerContext): Promise<string> => {
    const [verb, arg = "", rest = ""] = text.split(":");
    if (verb === "error") throw new ConnectError(rest, Code[arg as keyof typeof Code]);
    if (verb === "plain-error") throw new Error("secret detail");
    if (verb === "sleep") {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, Number(arg));
        ctx.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          reject(ctx.signal.reason);
        });
      });
    }
    if (verb === "header") ctx.responseHeader.set("x-fixture", arg);
    if (verb === "hop-by-hop") {
      // HTTP/1.1's connection-specific fields, which HTTP/2 forbids.
      ctx.responseHeader.set("connection", "close");
      ctx.responseHeader.set("keep-alive", "timeout=5");
      ctx.responseHeader.set("x-fixture", arg);
      ctx.responseTrailer.set("transfer-encoding", "chunked");
      ctx.responseTrailer.set("x-fixture-trailer", arg);
    }
    if (verb === "dated") ctx.responseHeader.set("date", "Tue, 01 Jan 2030 00:00:00 GMT");
    if (verb === "cookies") {
      ctx.responseHeader.append("set-cookie", "a=1");
      ctx.responseHeader.append("set-cookie", "b=2");
      ctx.responseHeader.set("x-fixture", arg);
    }
    if (verb === "trailer") ctx.responseTrailer.set("x-fixture", arg);
    return text;
  };
  return (router: ConnectRouter) =>
    router.service(FixtureService, {
      async unary(req: Value, ctx: HandlerContext) {
        seen.push(ctx);
        return { value: await act(req.value, ctx) };
      },
      async *serverStream(req: Value, ctx: HandlerContext) {
        seen.push(ctx);
        const [verb, arg = "0"] = req.value.split(":");
        const n = verb === "count" ? Number(arg) : 1;
        for (let i = 0; i < n; i++) yield { value: `${i}` };
        if (verb !== "count") yield { value: await act(req.value, ctx) };
      },
      async clientStream(reqs: AsyncIterable<Value>, ctx: HandlerContext) {
        seen.push(ctx);
        const parts: string[] = [];
        for await (const req of reqs) parts.push(await act(req.value, ctx));
        return { value: parts.join(",") };
      },
      async *bidi(reqs: AsyncIterable<Value>, ctx: HandlerContext) {
        seen.push(ctx);
        for await (const req of reqs) yield { value: await act(req.value, ctx) };
      },
    } as never);
}

/**
 * The engine on two free ports: HTTP/2 (`url`, raw streams) and HTTP/1.1 (`http1Url`, `node:http`
 * requests); anything it leaves answers 404.
 */
export async function startEngineServer(
  options: Omit<EngineOptions, "routes"> & { seen?: HandlerContext[] },
) {
  const { seen, ...rest } = options;
  const engine = createEngine({ ...rest, routes: fixtureRoutes(seen) });
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    if (!engine.handleStream(stream, headers))
      stream.respond({ ":status": 404 }, { endStream: true });
  });
  const http1 = http.createServer((req, res) => {
    if (engine.handleRequest(req, res)) return;
    res.statusCode = 404;
    res.end();
  });
  const sockets = new Set<{ destroy(): void }>();
  server.on("session", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  http1.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  await new Promise<void>((resolve) => http1.listen(0, "127.0.0.1", resolve));
  return {
    engine,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    http1Url: `http://127.0.0.1:${(http1.address() as AddressInfo).port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => http1.close(() => resolve()));
    },
  };
}

/** A StringValue request as one gRPC frame, for what a typed client cannot send. */
export function frame(text: string): Buffer {
  // google.protobuf.StringValue: field 1, length-delimited.
  const payload = Buffer.concat([Buffer.from([0x0a, Buffer.byteLength(text)]), Buffer.from(text)]);
  const out = Buffer.alloc(5 + payload.length);
  out.writeUInt32BE(payload.length, 1);
  payload.copy(out, 5);
  return out;
}

/** One gRPC request by hand, for what a typed client cannot send. */
export function rawCall(
  url: string,
  path: string,
  headers: Record<string, string>,
  body: Buffer,
  opts: { delayBodyMs?: number; keepOpen?: boolean; giveUpMs?: number } = {},
): Promise<{
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  /** Headers and trailers together, pseudo-headers and `date` left out. */
  fields: Record<string, string>;
  body: Buffer;
  ms: number;
}> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const session = http2.connect(url);
    session.on("error", reject);
    const req = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...headers,
    });
    let status = 0;
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on("response", (h) => {
      status = Number(h[":status"]);
      responseHeaders = h;
      if (h["grpc-status"] !== undefined) trailers = h;
    });
    req.on("trailers", (t) => {
      trailers = t;
    });
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    // A call never answered ends the test's wait (and its session) instead of hanging the file.
    const unanswered = setTimeout(() => session.destroy(), opts.giveUpMs ?? 10_000);
    req.on("close", () => {
      clearTimeout(unanswered);
      session.close();
      const fields: Record<string, string> = {};
      for (const h of [responseHeaders, trailers]) {
        for (const [k, v] of Object.entries(h)) {
          if (k.startsWith(":") || k === "date" || v === undefined) continue;
          fields[k] = Array.isArray(v) ? v.join(", ") : v;
        }
      }
      resolve({
        status,
        headers: responseHeaders,
        trailers,
        fields,
        body: Buffer.concat(chunks),
        ms: performance.now() - started,
      });
    });
    req.on("error", () => {});
    const send = () => (opts.keepOpen ? req.write(body) : req.end(body));
    if (opts.delayBodyMs === undefined) send();
    else setTimeout(() => !req.closed && send(), opts.delayBodyMs).unref();
  });
}

/** What came back from `rawRequest`. */
export interface RawAnswer {
  status: number;
  /** Headers and trailers together; pseudo-headers, `date` and HTTP/1.1's hop-by-hop ones left out. */
  fields: Record<string, string>;
  /** The `date` header. */
  date: string | undefined;
  body: Buffer;
}

const hopByHop = new Set(["date", "connection", "keep-alive", "transfer-encoding"]);

/**
 * One request by hand, over HTTP/2 or HTTP/1.1, for what a typed client cannot send: any method,
 * path, headers and body, read back whole (status, headers with trailers, body).
 */
export function rawRequest(
  url: string,
  request: {
    httpVersion: "1.1" | "2";
    method?: string;
    path: string;
    headers?: Record<string, string>;
    body?: Buffer;
  },
): Promise<RawAnswer> {
  const fields: Record<string, string> = {};
  let date: string | undefined;
  const keep = (h: Record<string, string | string[] | undefined>) => {
    if (typeof h.date === "string") date ??= h.date;
    for (const [k, v] of Object.entries(h)) {
      if (k.startsWith(":") || hopByHop.has(k) || v === undefined) continue;
      fields[k] = Array.isArray(v) ? v.join(", ") : v;
    }
  };
  const method = request.method ?? "POST";
  const body = request.body ?? Buffer.alloc(0);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    if (request.httpVersion === "2") {
      const session = http2.connect(url);
      session.on("error", reject);
      const req = session.request({
        ":method": method,
        ":path": request.path,
        ...request.headers,
      });
      let status = 0;
      req.on("response", (h) => {
        status = Number(h[":status"]);
        keep(h);
      });
      req.on("trailers", (t) => keep(t));
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("error", () => {});
      // A request never answered ends the test's wait (and its session) instead of hanging it.
      const unanswered = setTimeout(() => session.destroy(), 10_000);
      req.on("close", () => {
        clearTimeout(unanswered);
        session.close();
        resolve({ status, fields, date, body: Buffer.concat(chunks) });
      });
      if (method === "GET") req.end();
      else req.end(body);
      return;
    }
    const req = http.request(`${url}${request.path}`, {
      method,
      headers: { ...request.headers, connection: "close" },
      agent: false,
    });
    req.on("error", reject);
    req.on("response", (res) => {
      keep(res.headers);
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        keep(res.trailers);
        resolve({ status: res.statusCode ?? 0, fields, date, body: Buffer.concat(chunks) });
      });
      res.on("error", reject);
    });
    if (method === "GET") req.end();
    else req.end(body);
  });
}

/** Waits until `done()` holds, for `ms` at most (timers run late on a loaded machine). */
export async function until(done: () => boolean, ms = 2000): Promise<void> {
  const started = performance.now();
  while (!done() && performance.now() - started < ms) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
