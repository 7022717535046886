import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  createContextKey,
  createContextValues,
  type HandlerContext,
  type Interceptor,
} from "@connectrpc/connect";
import { compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import { createEngine } from "../engine.ts";
import { fixtureRoutes, type RawAnswer, rawRequest } from "./fixture.ts";

// The engine against its oracle, connect-node's own adapter: the same fixture routes and the same
// recording interceptor behind both, the same raw requests to both, and everything compared.

/** What the recording interceptor saw of one call. */
export interface View {
  url: string;
  stream: boolean;
  header: [string, string][];
  timeout: boolean;
  values: string;
}

const tagKey = createContextKey("", { description: "tag" });

/**
 * Records what every interceptor sees, refuses a call with `x-fail`, and hands on a request it
 * rebuilt, as an interceptor may.
 */
function recorder(views: View[]): Interceptor {
  return (next) => async (req) => {
    views.push({
      // The servers listen on different ports.
      url: req.url.replace(/:\d+\//, ":PORT/"),
      stream: req.stream,
      // Transport headers differ by implementation only in what HTTP adds (te, user-agent).
      header: [...req.header].filter(([k]) => k.startsWith("x-")),
      timeout:
        req.header.get("grpc-timeout") !== null || req.header.get("connect-timeout-ms") !== null,
      values: req.contextValues.get(tagKey),
    });
    if (req.header.get("x-fail") !== null) {
      throw new ConnectError(
        `refused by interceptor: ${req.header.get("x-fail")}`,
        Code.PermissionDenied,
        { "x-why": "because" },
      );
    }
    return next({ ...req, header: new Headers(req.header) });
  };
}

/** The largest request message both sides accept. */
export const readMaxBytes = 1024;

/** One server of the comparison: where it listens, and what its interceptor and handler saw. */
export interface Side {
  url: string;
  views: View[];
  seen: HandlerContext[];
  close(): Promise<void>;
}

type AnyServer = http.Server | http2.Http2Server;

async function listen(server: AnyServer, views: View[], seen: HandlerContext[]): Promise<Side> {
  const sockets = new Set<{ destroy(): void }>();
  server.on("session", (s: http2.ServerHttp2Session) => sockets.add(s));
  server.on("connection", (s: { destroy(): void }) => sockets.add(s));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    views,
    seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function options(views: View[], seen: HandlerContext[]) {
  return {
    routes: fixtureRoutes(seen) as (router: ConnectRouter) => void,
    interceptors: [recorder(views)],
    contextValues: () => createContextValues().set(tagKey, "tagged"),
    readMaxBytes,
    writeMaxBytes: readMaxBytes * 4,
    acceptCompression: [compressionGzip],
  };
}

/**
 * The engine and connect-node's adapter (every protocol) serving the fixture, over HTTP/2
 * (`version` "2") or HTTP/1.1; what neither serves answers 404.
 */
export async function startSides(version: "1.1" | "2"): Promise<{ engine: Side; connect: Side }> {
  const engineViews: View[] = [];
  const engineSeen: HandlerContext[] = [];
  const engine = createEngine(options(engineViews, engineSeen));
  const notFound = (res: http.ServerResponse | http2.Http2ServerResponse) => {
    res.statusCode = 404;
    res.end();
  };
  let engineServer: AnyServer;
  if (version === "2") {
    engineServer = http2.createServer();
    engineServer.on("stream", (stream, headers) => {
      if (!engine.handleStream(stream, headers))
        stream.respond({ ":status": 404 }, { endStream: true });
    });
  } else {
    engineServer = http.createServer((req, res) => {
      if (!engine.handleRequest(req, res)) notFound(res);
    });
  }
  const connectViews: View[] = [];
  const connectSeen: HandlerContext[] = [];
  const adapter = connectNodeAdapter(options(connectViews, connectSeen));
  const connectServer: AnyServer =
    version === "2" ? http2.createServer(adapter) : http.createServer(adapter);
  return {
    engine: await listen(engineServer, engineViews, engineSeen),
    connect: await listen(connectServer, connectViews, connectSeen),
  };
}

/** One request's outcome on one side, with what its interceptor and handler saw. */
export interface Observed {
  answer: { status: number; fields: Record<string, string>; body: string };
  views: View[];
  seen: [string, string, boolean][];
}

/** Sends the same request to a side and records what came back and what was seen. */
export async function observe(
  side: Side,
  request: Parameters<typeof rawRequest>[1],
): Promise<Observed> {
  const views = side.views.length;
  const seen = side.seen.length;
  const raw: RawAnswer = await rawRequest(side.url, request);
  return {
    answer: { status: raw.status, fields: raw.fields, body: raw.body.toString("hex") },
    views: side.views.slice(views),
    seen: side.seen
      .slice(seen)
      .map((ctx): [string, string, boolean] => [
        ctx.protocolName,
        ctx.requestMethod,
        ctx.signal.aborted,
      ]),
  };
}
