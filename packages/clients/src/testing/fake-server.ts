import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";

/** A call the fake server received. */
export interface ReceivedCall {
  /** `package.Service/Method`. */
  method: string;
  header: Headers;
}

/** A real HTTP/2 server in this process, serving whatever `routes` registers. */
export interface FakeServer {
  url: string;
  port: number;
  /** Every call received, in order. */
  calls: ReceivedCall[];
  /** How many calls of `method` (`Service/Method` or just `Method`) were received. */
  count(method: string): number;
  /** PING frames received from clients. */
  pings: number;
  /** Sends GOAWAY on every open connection. */
  goaway(): void;
  /** Stops accepting and destroys every connection. */
  close(): Promise<void>;
}

/**
 * Starts a Connect server (gRPC, gRPC-Web and Connect over HTTP/2) on a free port of 127.0.0.1,
 * or on `port`, for tests of clients against a server that fails on purpose.
 */
export async function startFakeServer(
  routes: (router: ConnectRouter) => void,
  options: { port?: number } = {},
): Promise<FakeServer> {
  const calls: ReceivedCall[] = [];
  const record: Interceptor = (next) => (req) => {
    calls.push({ method: `${req.service.typeName}/${req.method.name}`, header: req.header });
    return next(req);
  };
  const server = http2.createServer(connectNodeAdapter({ routes, interceptors: [record] }));
  const sessions = new Set<http2.ServerHttp2Session>();
  const fake = {
    url: "",
    port: 0,
    calls,
    pings: 0,
    count: (method: string) =>
      calls.filter((c) => c.method === method || c.method.endsWith(`/${method}`)).length,
    goaway() {
      for (const session of sessions) session.goaway();
    },
    close() {
      for (const session of sessions) session.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
    session.on("ping", () => {
      fake.pings++;
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  fake.port = (server.address() as AddressInfo).port;
  fake.url = `http://127.0.0.1:${fake.port}`;
  return fake;
}
