import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { type Client, createClient, type Interceptor, type ServiceImpl } from "@connectrpc/connect";
import {
  connectNodeAdapter,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { UserService, UserStatus } from "@keel/gen/user/v1/user_pb";

export type Protocol = "grpc" | "grpc-web" | "connect";
export const protocols: Protocol[] = ["grpc", "grpc-web", "connect"];

/**
 * A real HTTP/2 server on a free port serving UserService with all four call kinds, behind the
 * given interceptors. Behaviour:
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
  const impl: ServiceImpl<typeof UserService> = {
    getUser(req) {
      if (req.userId === 13n) throw new Error("unlucky");
      return { user: { userId: req.userId, username: `user${req.userId}` } };
    },
    createUser: (req) => ({ user: { userId: 1n, username: req.username } }),
    listUsers: () => ({}),
    async *streamUserActivities(req) {
      for (let i = 1n; i <= 3n; i++)
        yield { activityId: i, userId: req.userId, action: "user.login" };
    },
    async batchUpdateUsers(requests) {
      let updatedCount = 0;
      for await (const _ of requests) updatedCount++;
      return { updatedCount };
    },
    async *syncUserStatus(requests) {
      for await (const req of requests) yield { userId: req.userId, status: UserStatus.ACTIVE };
    },
    login: () => ({ accessToken: "a" }),
    refreshToken: () => ({ accessToken: "a" }),
    ...overrides,
  };
  const server = http2.createServer(
    connectNodeAdapter({ routes: (router) => router.service(UserService, impl), interceptors }),
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
