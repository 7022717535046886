import type * as http2 from "node:http2";
import { type DescMessage, type DescService, type Message, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { parseTimeout } from "@connectrpc/connect/protocol-connect";
import type { Engine, EngineMethod, InvokeBody, InvokeResult, ReadBody } from "@keel/engine";
import { bounded, quote } from "@keel/interceptors";
import { asConnectError, httpStatusOf, restErrorBody, withHttpStatus } from "./error-mapping.ts";
import { callRequestHeader, restResponseHeaders } from "./headers.ts";
import { collectHttpBindings, type HttpBinding } from "./http-rule.ts";
import {
  bodyTooLarge,
  type NodeRequest,
  type NodeResponse,
  originOf,
  type RestRequest,
  readJsonBody,
  writeChunk,
  writeJson,
} from "./node-io.ts";
import { createOpenApiDocument, descriptorSetOf } from "./openapi.ts";
import { ndjson } from "./openapi-operation.ts";
import { openApiPath } from "./path-template.ts";
import { requestMessage } from "./request-mapping.ts";
import { type ResponseBody, responseBodyOf } from "./response-mapping.ts";
import { createRouteTable } from "./route-table.ts";
import { StreamRequest, StreamResponse } from "./stream-io.ts";

export type { NodeRequest, NodeResponse, RestRequest } from "./node-io.ts";

export interface RestHandlerOptions {
  /**
   * The engine that serves the services: every REST call is a call of its method, with the
   * message decoded here, through the engine's interceptors, context values (from the HTTP
   * request's headers and peer), deadlines and request gate. The engine reads the JSON body,
   * within its limits: its `readMaxBytes` (413), its budgets of bytes held (429), its idle
   * timeout (504).
   */
  engine: Pick<Engine, "methods" | "invoke">;
  /**
   * The services to serve over HTTP/JSON, by their `google.api.http` rules; each must be
   * registered in the engine's routes.
   */
  services: readonly DescService[];
  /** Prefixed to every route and to `/openapi.json`, such as "/rest". Default "". */
  pathPrefix?: string;
  /**
   * The OpenAPI document served at `<pathPrefix>/openapi.json`, or false for none. Default: one
   * generated from `services` at start, without descriptions (generated code carries no
   * comments); `readOpenApiDocument()` returns the one written at build time, with them.
   */
  openapi?: object | false;
}

/** A route served: `GET /api/v1/users/{user_id}` → `user.v1.UserService/GetUser`. */
export interface RestRoute {
  method: string;
  path: string;
  procedure: string;
  streaming: boolean;
}

/** A Node request handler for HTTP/1.1 and HTTP/2 that serves the REST routes. */
export interface RestHandler {
  (req: RestRequest, res: NodeResponse): Promise<void>;
  /**
   * Serves a raw HTTP/2 stream whose path is this handler's (see `matches`) and answers true, or
   * leaves it and answers false: no request and response objects of Node's compatibility layer.
   */
  serveStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): boolean;
  /**
   * Whether a request URL (`req.url`) is this handler's: the OpenAPI document, a route, or any path
   * under a route's first segment (`/api/…`), which gets a JSON 404 when nothing matches. Send the
   * others (`/user.v1.UserService/GetUser`) to the Connect adapter.
   */
  matches(url: string): boolean;
  /** The routes, in the order they are tried. */
  readonly routes: readonly RestRoute[];
}

/** What a route's calls need, worked out once per route. */
interface Route {
  method: EngineMethod;
  /** The HTTP response body of a response message. */
  response: ResponseBody;
  output: DescMessage;
}

/**
 * Serves HTTP/JSON requests by the services' `google.api.http` rules (transcoding): each request
 * becomes a call of the engine's method, with the message made from the path, the query and the
 * JSON body (protobuf-es `fromJson`), and the caller's headers (authorization, x-request-id,
 * traceparent, baggage, deadline). The response is the message in proto3 JSON (`toJson`,
 * `response_body` applied); an error, the HTTP status of its code with a `RestErrorBody`. Server
 * streams are sent as newline-delimited JSON (`application/x-ndjson`), one message per line, once
 * the first message (or the end) is there; a stream that fails after it started ends with an error
 * line. No route → 404, a route with another method → 405 with `allow`; both with an error body.
 */
export function createRestHandler(options: RestHandlerOptions): RestHandler {
  const { engine } = options;
  const prefix = (options.pathPrefix ?? "").replace(/\/+$/, "");
  const table = createRouteTable(collectHttpBindings(options.services), prefix);
  const routeOf = routesByBinding(table.bindings, engine.methods);
  const openapiPath = `${prefix}/openapi.json`;
  const openapi =
    options.openapi === false
      ? undefined
      : JSON.stringify(
          options.openapi ??
            createOpenApiDocument({
              files: descriptorSetOf(options.services),
              services: options.services.map((s) => s.typeName),
              pathPrefix: prefix,
            }),
        );
  const origins = new Map<string, string>();

  const serve = async (req: RestRequest, res: NodeResponse, signal: AbortSignal) => {
    const url = req.url ?? "/";
    const queryAt = url.indexOf("?");
    const path = queryAt < 0 ? url : url.slice(0, queryAt);
    const httpMethod = (req.method ?? "GET").toUpperCase();
    if (openapi !== undefined && path === openapiPath) {
      if (httpMethod !== "GET") throw notAllowed(httpMethod, path, ["GET"]);
      return writeJson(res, 200, {}, openapi);
    }
    const found = table.find(httpMethod, path);
    if (found === undefined) {
      const error = new ConnectError(
        `no route for ${bounded(httpMethod, 32)} ${quote(path)}`,
        Code.NotFound,
      );
      throw withHttpStatus(error, 404);
    }
    if (found.allowed !== undefined) throw notAllowed(httpMethod, path, found.allowed);
    const { binding, variables } = found;
    const route = routeOf.get(binding) as Route;
    const header = callRequestHeader(req.headers);
    const timeout = parseTimeout(header.get("connect-timeout-ms"), Number.MAX_SAFE_INTEGER);
    if (timeout.error !== undefined) throw timeout.error;
    const input = binding.method.input;
    const parts = (body: Awaited<ReturnType<typeof readJsonBody>>) => ({
      pathVariables: variables,
      query: new URLSearchParams(queryAt < 0 ? "" : url.slice(queryAt + 1)),
      body,
    });
    const result = await engine.invoke(route.method, {
      protocolName: "rest",
      header,
      headers: req.headers,
      peer: req.socket?.remoteAddress ?? "",
      url: originOf(req, origins) + url,
      requestMethod: httpMethod,
      signal,
      ...(timeout.timeoutMs === undefined ? {} : { timeoutMs: timeout.timeoutMs }),
      // Read once the request gate has let the call through, by the engine: within its limits
      // on size, on bytes held per connection and per process, on a stalled body, and the call's.
      ...(binding.body === ""
        ? { message: () => requestMessage(input, "", parts(undefined)) }
        : {
            body: bodyOf(req),
            message: async (read: ReadBody) =>
              requestMessage(input, binding.body, parts(await readJsonBody(req.headers, read))),
          }),
    });
    // The client went away: the call ended with it.
    if (signal.aborted) return;
    if (result.error !== undefined) {
      return writeError(res, result.error, result.header, result.trailer);
    }
    if (!result.stream) {
      const body = JSON.stringify(route.response(toJson(route.output, result.message)));
      return writeJson(res, 200, restResponseHeaders(result.header, result.trailer), body);
    }
    return serveStream(res, route, result, signal);
  };

  const handle = async (req: RestRequest, res: NodeResponse): Promise<void> => {
    const abort = new AbortController();
    // A response closes when it is done, too: only a close before the call ended cancels it (an
    // error made per request cost 7% of a REST call's CPU, for nothing).
    const onClose = () => abort.abort(new ConnectError("the client went away", Code.Canceled));
    res.once("close", onClose);
    try {
      await serve(req, res, abort.signal);
    } catch (err) {
      if (abort.signal.aborted) return;
      if (res.headersSent) {
        res.end();
        return;
      }
      writeError(res, asConnectError(err));
    } finally {
      res.off("close", onClose);
    }
  };
  const matches = (url: string): boolean => {
    const path = url.split("?", 1)[0] ?? "";
    return (openapi !== undefined && path === openapiPath) || table.covers(path);
  };
  const routes = table.bindings.map((b) => ({
    method: b.httpMethod,
    path: prefix + openApiPath(b.template),
    procedure: b.procedure,
    streaming: b.method.methodKind === "server_streaming",
  }));
  const serveRawStream = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    if (!matches(headers[":path"] ?? "/")) return false;
    void handle(new StreamRequest(stream, headers), new StreamResponse(stream, headers));
    return true;
  };
  return Object.assign(handle, { matches, routes, serveStream: serveRawStream });
}

/**
 * Sends a server stream as NDJSON. Like Connect, it waits for the first message before it sends
 * the response headers, so that a call refused at once (unauthenticated, say) gets its own status.
 */
async function serveStream(
  res: NodeResponse,
  route: Route,
  result: InvokeResult & { stream: true },
  signal: AbortSignal,
): Promise<void> {
  const messages = result.message[Symbol.asyncIterator]();
  const line = (message: Message) =>
    `${JSON.stringify(route.response(toJson(route.output, message)))}\n`;
  try {
    let next: IteratorResult<Message>;
    try {
      next = await messages.next();
    } catch (err) {
      if (signal.aborted) return;
      return writeError(res, asConnectError(err), result.header, result.trailer);
    }
    if (signal.aborted) return;
    res.writeHead(200, { ...restResponseHeaders(result.header), "content-type": ndjson });
    try {
      for (; next.done !== true && !signal.aborted; next = await messages.next()) {
        await writeChunk(res, line(next.value));
      }
    } catch (err) {
      if (!signal.aborted)
        await writeChunk(res, `${JSON.stringify(restErrorBody(asConnectError(err)))}\n`);
    }
    res.end();
  } finally {
    // Ends the call when the client went away before the stream did.
    await messages.return?.();
  }
}

function writeError(res: NodeResponse, error: ConnectError, ...headers: Headers[]): void {
  const status = httpStatusOf(error);
  const body = JSON.stringify(restErrorBody(error, status));
  const fields = restResponseHeaders(...headers, error.metadata);
  // A body too large is left unread: an HTTP/1.1 client is told not to send another request on
  // this connection, which closes after the answer (HTTP/2 leaves the field out).
  if (status === 413) fields.connection = "close";
  writeJson(res, status, fields, body);
}

function notAllowed(httpMethod: string, path: string, allowed: string[]): ConnectError {
  const error = new ConnectError(
    `${bounded(httpMethod, 32)} is not allowed on ${quote(path)}; use ${allowed.join(" or ")}`,
    Code.Unimplemented,
    { allow: allowed.join(", ") },
  );
  return withHttpStatus(error, 405);
}

/** A request's body for the engine to read: the raw stream's, or the request's own. */
function bodyOf(req: RestRequest): InvokeBody {
  return {
    source: req instanceof StreamRequest ? req.stream : (req as NodeRequest),
    contentLength: req.headers["content-length"],
    tooLarge: bodyTooLarge,
  };
}

/** The engine's method of each binding, and its response body; throws when one is missing. */
function routesByBinding(
  bindings: readonly HttpBinding[],
  methods: ReadonlyMap<string, EngineMethod>,
): Map<HttpBinding, Route> {
  const out = new Map<HttpBinding, Route>();
  for (const binding of bindings) {
    const method = methods.get(`/${binding.procedure}`);
    if (method === undefined) {
      throw new Error(`no handler for ${binding.procedure}: register its service on the router`);
    }
    out.set(binding, {
      method,
      response: responseBodyOf(binding.method.output, binding.responseBody),
      output: binding.method.output,
    });
  }
  return out;
}
