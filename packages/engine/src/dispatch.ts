import { contentTypeRegExp as grpcContentType } from "@connectrpc/connect/protocol-grpc";
import { connectContentType, serveConnect } from "./connect.ts";
import type { EngineContext } from "./engine-context.ts";
import type { Exchange, RawHeaders } from "./exchange.ts";
import { serveGrpc } from "./grpc.ts";
import { grpcWebContentType, serveGrpcWeb } from "./grpc-web.ts";
import type { EngineMethod } from "./method-table.ts";

/**
 * Picks the protocol of a request from its content type and HTTP method, as connect-node's
 * adapter negotiates it, and serves it; answers false for a request that is no call (a REST path,
 * a page), which the caller hands on. A method not served answers in the protocol asked for.
 */
export function dispatch(
  engine: EngineContext,
  methods: ReadonlyMap<string, EngineMethod>,
  exchange: Exchange,
  httpMethod: string,
  path: string,
  peer: string,
  url: string,
): boolean {
  const contentType = (exchange.headers["content-type"] as string | undefined) ?? "";
  const query = path.indexOf("?");
  const entry = methods.get(query === -1 ? path : path.slice(0, query));
  const grpc = grpcContentType.test(contentType);
  const web = grpc ? null : grpcWebContentType.exec(contentType);
  const connect = grpc || web !== null ? null : connectContentType.exec(contentType);
  if (entry === undefined) {
    if (grpc || web !== null) {
      // gRPC's answer: HTTP 200 and the status, with nothing after it.
      exchange.respond(200, unknownMethodStatus(path, grpc), true);
    } else if (connect !== null && (connect[1] !== undefined || connect[2] === undefined)) {
      // Connect's (application/json without a method is left: it may be a REST call).
      const body = Buffer.from(
        JSON.stringify({ code: "unimplemented", message: unknownMethodMessage(path) }),
      );
      exchange.respond(
        404,
        ["content-type", "application/json", "content-length", String(body.length)],
        false,
      );
      exchange.end(body);
    } else {
      return false;
    }
    exchange.stopBody();
    return true;
  }
  const kind = entry.method.methodKind;
  if (kind === "bidi_streaming" && exchange.httpVersion !== "2") {
    // A client expecting full duplex may hang on HTTP/1.1: it is told, and the connection closed.
    return refuse(exchange, 505, ["connection", "close"]);
  }
  const get = httpMethod === "GET" && kind === "unary" && entry.noSideEffects;
  if (httpMethod !== "POST" && !get) {
    return refuse(exchange, 405, [
      "allow",
      kind === "unary" && entry.noSideEffects ? "POST, GET" : "POST",
    ]);
  }
  if (get) {
    if (contentType !== "" && (connect === null || connect[1] !== undefined)) {
      return refuse(exchange, 415);
    }
    const params = new URL(url, "http://x").searchParams;
    const encoding = params.get("encoding");
    if (encoding !== "proto" && encoding !== "json") return refuse(exchange, 415);
    serveConnect(
      engine,
      entry,
      exchange,
      { stream: false, binary: encoding === "proto", get: params },
      peer,
      url,
    );
    return true;
  }
  if (grpc) {
    serveGrpc(engine, entry, exchange, !contentType.endsWith("+json"), peer, url);
  } else if (web !== null) {
    serveGrpcWeb(engine, entry, exchange, web[1] !== undefined, web[2] === undefined, peer, url);
  } else if (connect !== null && (connect[1] !== undefined) === (kind !== "unary")) {
    serveConnect(
      engine,
      entry,
      exchange,
      { stream: connect[1] !== undefined, binary: connect[2] === undefined },
      peer,
      url,
    );
  } else {
    return refuse(exchange, 415);
  }
  return true;
}

function refuse(exchange: Exchange, status: number, headers: RawHeaders = []): true {
  exchange.respond(status, headers, true);
  exchange.stopBody();
  return true;
}

/** grpc-go's words for a method not served; the client's path echoed in part only. */
function unknownMethodMessage(path: string): string {
  // HTTP/2 lets headers reach 16 KiB and more.
  const shown = path.length > 200 ? `${path.slice(0, 200)}…` : path;
  const [, service = "", name = ""] = /^\/([^/?]*)\/?([^?]*)/s.exec(shown) ?? [];
  return name === ""
    ? `unknown service ${service}`
    : `unknown method ${name} for service ${service}`;
}

function unknownMethodStatus(path: string, grpc: boolean): RawHeaders {
  return [
    "content-type",
    grpc ? "application/grpc" : "application/grpc-web+proto",
    "grpc-status",
    "12",
    "grpc-message",
    encodeURIComponent(unknownMethodMessage(path)),
  ];
}
