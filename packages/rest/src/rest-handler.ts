import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues } from "@connectrpc/connect";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { bounded, quote } from "@keel/interceptors";
import { type ConnectCall, callServerStream, callUnary } from "./connect-call.ts";
import { httpStatusOf, restErrorBody, withHttpStatus } from "./error-mapping.ts";
import { connectRequestHeader, restResponseHeaders } from "./headers.ts";
import { collectHttpBindings, type HttpBinding } from "./http-rule.ts";
import {
  type NodeRequest,
  type NodeResponse,
  originOf,
  readJsonBody,
  writeChunk,
  writeJson,
} from "./node-io.ts";
import { createOpenApiDocument, descriptorSetOf } from "./openapi.ts";
import { ndjson } from "./openapi-operation.ts";
import { openApiPath } from "./path-template.ts";
import { requestJson } from "./request-mapping.ts";
import { type ResponseBody, responseBodyOf } from "./response-mapping.ts";
import { createRouteTable } from "./route-table.ts";

export type { NodeRequest, NodeResponse } from "./node-io.ts";

export interface RestHandlerOptions {
  /**
   * The handlers of a Connect router (`router.handlers`) that serves the Connect protocol: every
   * REST call goes through one of them, and so through the router's interceptors.
   */
  handlers: readonly UniversalHandler[];
  /**
   * The services to serve over HTTP/JSON, by their `google.api.http` rules; each must be
   * registered on the router.
   */
  services: readonly DescService[];
  /** Prefixed to every route and to `/openapi.json`, such as "/rest". Default "". */
  pathPrefix?: string;
  /** Context values for each call, like connectNodeAdapter's option. Default: none. */
  contextValues?: (req: NodeRequest) => ContextValues;
  /**
   * The OpenAPI document served at `<pathPrefix>/openapi.json`, or false for none. Default: one
   * generated from `services` at start, without descriptions (generated code carries no
   * comments); `readOpenApiDocument()` returns the one written at build time, with them.
   */
  openapi?: object | false;
  /** The largest request body accepted, in bytes; a larger one gets 413. Default 4 MiB. */
  readMaxBytes?: number;
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
  (req: NodeRequest, res: NodeResponse): Promise<void>;
  /**
   * Whether a request URL (`req.url`) is this handler's: the OpenAPI document, a route, or any path
   * under a route's first segment (`/api/…`), which gets a JSON 404 when nothing matches. Send the
   * others (`/user.v1.UserService/GetUser`) to the Connect adapter.
   */
  matches(url: string): boolean;
  /** The routes, in the order they are tried. */
  readonly routes: readonly RestRoute[];
}

/**
 * Serves HTTP/JSON requests by the services' `google.api.http` rules (transcoding): each request
 * becomes a Connect call of the matching handler, with the message made from the path, the query
 * and the JSON body, and the caller's headers (authorization, x-request-id, traceparent, baggage,
 * deadline). The response is the message in proto3 JSON (`response_body` applied); an error, the
 * HTTP status of its code with a `RestErrorBody`. Server streams are sent as newline-delimited
 * JSON (`application/x-ndjson`), one message per line, once the first message (or the end) is
 * there; a stream that fails after it started ends with an error line. No route → 404, a route
 * with another method → 405 with `allow`; both with an error body.
 */
export function createRestHandler(options: RestHandlerOptions): RestHandler {
  const prefix = (options.pathPrefix ?? "").replace(/\/+$/, "");
  const readMaxBytes = options.readMaxBytes ?? 4 * 1024 * 1024;
  const table = createRouteTable(collectHttpBindings(options.services), prefix);
  const handlerOf = handlersByBinding(table.bindings, options.handlers);
  const responseOf = new Map(
    table.bindings.map((b) => [b, responseBodyOf(b.method.output, b.responseBody)]),
  );
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

  const serve = async (req: NodeRequest, res: NodeResponse, signal: AbortSignal) => {
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
    const body = binding.body === "" ? undefined : await readJsonBody(req, readMaxBytes);
    const call: ConnectCall = {
      handler: handlerOf.get(binding) as UniversalHandler,
      message: requestJson(binding.method.input, binding.body, {
        pathVariables: variables,
        query: new URLSearchParams(queryAt < 0 ? "" : url.slice(queryAt + 1)),
        body,
      }),
      header: connectRequestHeader(req.headers),
      origin: originOf(req),
      httpVersion: req.httpVersion,
      signal,
      contextValues: options.contextValues?.(req),
    };
    const response = responseOf.get(binding) as ResponseBody;
    if (binding.method.methodKind === "unary") return serveUnary(res, response, call);
    return serveStream(res, response, call);
  };

  const handle = async (req: NodeRequest, res: NodeResponse): Promise<void> => {
    const abort = new AbortController();
    res.once("close", () => abort.abort(new ConnectError("the client went away", Code.Canceled)));
    try {
      await serve(req, res, abort.signal);
    } catch (err) {
      if (abort.signal.aborted) return;
      if (res.headersSent) {
        res.end();
        return;
      }
      const error =
        err instanceof ConnectError
          ? err
          : new ConnectError("internal error", Code.Internal, undefined, undefined, err);
      writeError(res, error);
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
  return Object.assign(handle, { matches, routes });
}

async function serveUnary(res: NodeResponse, response: ResponseBody, call: ConnectCall) {
  const outcome = await callUnary(call);
  if (call.signal.aborted) return;
  if (!outcome.ok) return writeError(res, outcome.error, outcome.header);
  writeJson(
    res,
    200,
    restResponseHeaders(outcome.header),
    JSON.stringify(response(outcome.message)),
  );
}

/**
 * Sends a server stream as NDJSON. Like Connect, it waits for the first message before it sends
 * the response headers, so that a call refused at once (unauthenticated, say) gets its own status.
 */
async function serveStream(res: NodeResponse, response: ResponseBody, call: ConnectCall) {
  const { header, events } = await callServerStream(call);
  try {
    let next = await events.next();
    if (call.signal.aborted) return;
    if (!next.done && next.value.kind === "end" && next.value.error !== undefined) {
      return writeError(res, next.value.error, header, next.value.metadata);
    }
    res.writeHead(200, { ...restResponseHeaders(header), "content-type": ndjson });
    for (; !next.done && !call.signal.aborted; next = await events.next()) {
      const event = next.value;
      if (event.kind === "message") {
        await writeChunk(res, `${JSON.stringify(response(event.message))}\n`);
      } else if (event.error !== undefined) {
        await writeChunk(res, `${JSON.stringify(restErrorBody(event.error))}\n`);
      }
    }
    res.end();
  } finally {
    // Ends the call when the client went away before the stream did.
    await events.return(undefined);
  }
}

function writeError(res: NodeResponse, error: ConnectError, ...headers: Headers[]): void {
  const status = httpStatusOf(error);
  const body = JSON.stringify(restErrorBody(error, status));
  writeJson(res, status, restResponseHeaders(...headers, error.metadata), body);
}

function notAllowed(httpMethod: string, path: string, allowed: string[]): ConnectError {
  const error = new ConnectError(
    `${bounded(httpMethod, 32)} is not allowed on ${quote(path)}; use ${allowed.join(" or ")}`,
    Code.Unimplemented,
    { allow: allowed.join(", ") },
  );
  return withHttpStatus(error, 405);
}

/** The router's handler of each binding; throws when one is missing or does not speak Connect. */
function handlersByBinding(
  bindings: readonly HttpBinding[],
  handlers: readonly UniversalHandler[],
): Map<HttpBinding, UniversalHandler> {
  const byProcedure = new Map(
    handlers.map((h) => [`${h.method.parent.typeName}/${h.method.name}`, h]),
  );
  const out = new Map<HttpBinding, UniversalHandler>();
  for (const binding of bindings) {
    const handler = byProcedure.get(binding.procedure);
    if (handler === undefined) {
      throw new Error(`no handler for ${binding.procedure}: register its service on the router`);
    }
    if (!handler.protocolNames.includes("connect")) {
      throw new Error(`${binding.procedure}: the router must serve the Connect protocol`);
    }
    out.set(binding, handler);
  }
  return out;
}
