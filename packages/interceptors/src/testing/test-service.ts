import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import {
  type Client,
  Code,
  ConnectError,
  createClient,
  createContextValues,
  type HandlerContext,
  type Interceptor,
  type ServiceImpl,
} from "@connectrpc/connect";
import {
  connectNodeAdapter,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { UserService, UserStatus } from "@keel/gen/user/v1/user_pb";
import { peerKey } from "../context.ts";

export type Protocol = "grpc" | "grpc-web" | "connect";
export const protocols: Protocol[] = ["grpc", "grpc-web", "connect"];

/** What the test service saw of each call, for assertions on what interceptors handed on. */
export interface SeenCall {
  method: string;
  ctx: HandlerContext;
}

/**
 * A real HTTP/2 server on a free port serving UserService with all four call kinds, behind the
 * given interceptors; `peerKey` is set from the socket as keel's server does. Behaviour:
 * - GetUser (unary) answers `user_id` back; user_id 13 throws a plain Error.
 * - StreamUserActivities (server stream) sends 3 activities for `user_id`.
 * - BatchUpdateUsers (client stream) counts the updates.
 * - SyncUserStatus (bidi) echoes every update with status ACTIVE.
 * `overrides` replaces any of these.
 */
export async function startTestService(
  interceptors: Interceptor[],
  overrides: Partial<ServiceImpl<typeof UserService>> = {},
) {
  const seen: SeenCall[] = [];
  const impl: ServiceImpl<typeof UserService> = {
    getUser(req, ctx) {
      seen.push({ method: "GetUser", ctx });
      if (req.userId === 13n) throw new Error("unlucky");
      return { user: { userId: req.userId, username: `user${req.userId}` } };
    },
    createUser: (req) => ({ user: { userId: 1n, username: req.username } }),
    listUsers: () => ({}),
    async *streamUserActivities(req, ctx) {
      seen.push({ method: "StreamUserActivities", ctx });
      for (let i = 1n; i <= 3n; i++)
        yield { activityId: i, userId: req.userId, action: "user.login" };
    },
    async batchUpdateUsers(requests, ctx) {
      seen.push({ method: "BatchUpdateUsers", ctx });
      let updatedCount = 0;
      for await (const _ of requests) updatedCount++;
      return { updatedCount };
    },
    async *syncUserStatus(requests, ctx) {
      seen.push({ method: "SyncUserStatus", ctx });
      for await (const req of requests) yield { userId: req.userId, status: UserStatus.ACTIVE };
    },
    login: () => ({ accessToken: "a" }),
    refreshToken: () => ({ accessToken: "a" }),
    createApiKey: (req) => ({ apiKey: { keyId: "k1", name: req.name }, key: "keel_k1_x" }),
    listApiKeys: () => ({}),
    revokeApiKey: (req) => ({ apiKey: { keyId: req.keyId } }),
    ...overrides,
  };
  const server = http2.createServer(
    connectNodeAdapter({
      routes: (router) => router.service(UserService, impl),
      interceptors,
      contextValues: (req) => createContextValues().set(peerKey, req.socket.remoteAddress ?? ""),
    }),
  );
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    seen,
    /** A client over `protocol` (HTTP/2), with optional client-side interceptors. */
    client(
      protocol: Protocol = "grpc",
      clientInterceptors: Interceptor[] = [],
    ): Client<typeof UserService> {
      const options = { baseUrl: url, interceptors: clientInterceptors };
      const transport =
        protocol === "grpc"
          ? createGrpcTransport(options)
          : protocol === "grpc-web"
            ? createGrpcWebTransport({ ...options, httpVersion: "2" })
            : createConnectTransport({ ...options, httpVersion: "2" });
      return createClient(UserService, transport);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Clients keep their HTTP/2 sessions open; end them so the server can close.
        for (const session of sessions) session.destroy();
      }),
  };
}

/** An async iterable of the given messages, for client-streaming calls. */
export async function* messages<T>(items: T[]): AsyncIterable<T> {
  yield* items;
}

/**
 * Calls `open` again while it fails with RESOURCE_EXHAUSTED, up to about a second: a server lets go
 * of a call a moment after its client saw it end.
 */
export async function retryWhileExhausted<T>(open: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await open();
    } catch (err) {
      if (i >= 50 || ConnectError.from(err).code !== Code.ResourceExhausted) throw err;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
