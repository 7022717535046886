import { createHmac } from "node:crypto";
import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  createContextValues,
  type HandlerContext,
  type Interceptor,
  type ServiceImpl,
} from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createEngine, type EngineOptions } from "@keel/engine";
import { UserService, UserStatus } from "@keel/gen/user/v1/user_pb";
import {
  createAuthenticationInterceptor,
  createRequestIdInterceptor,
  peerKey,
  principalKey,
} from "@keel/interceptors";
import { createRestHandler } from "../rest-handler.ts";

const secret = new TextEncoder().encode("a test secret of at least 32 bytes, for HS256");

/** An access token for `subject`, as keel's server issues them (HS256, iss and aud "keel"). */
export function accessToken(subject: string, roles: string[] = []): string {
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const header = encode({ alg: "HS256", typ: "JWT" });
  const payload = encode({
    sub: subject,
    roles,
    typ: "access",
    iss: "keel",
    aud: "keel",
    iat: now,
    exp: now + 600,
  });
  const signature = createHmac("sha256", secret).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${signature}`;
}

/** What an interceptor saw of a call: proof that REST calls go through the chain. */
export interface SeenCall {
  procedure: string;
  stream: boolean;
  header: Headers;
  /** The authenticated subject, set by the authentication interceptor before this one. */
  subject: string | undefined;
  /** The peer address, from the `contextValues` option. */
  peer: string;
  message: unknown;
  ctx?: HandlerContext;
}

/**
 * A real server on a free port, HTTP/1.1 and HTTP/2 (two listeners), serving UserService over
 * Connect, gRPC and gRPC-Web (connectNodeAdapter) and over REST (the engine, with the same routes,
 * interceptors and context values): the REST handler is the adapter's fallback; and a third
 * listener serving REST on raw HTTP/2 streams (`serveStream`), as keel's server serves HTTP/2.
 * Interceptors: request id, authentication (HS256, see `accessToken`), and one that records each
 * call. Behaviour by user id:
 * - GetUser: 7 → ada; 404 → NOT_FOUND; 429 → RESOURCE_EXHAUSTED with `retry-after: 3`.
 * - CreateUser: "taken" → ALREADY_EXISTS; otherwise user 1.
 * - ListUsers: `page_size` users with the `status` asked for.
 * - StreamUserActivities: 7 → three activities; 13 → two, then UNAVAILABLE; 403 →
 *   PERMISSION_DENIED before any; 99 → one, then waits until the client goes away (`aborted`).
 *
 * `limits`: the engine's limits on request bodies, when not its defaults.
 */
export async function startRestServer(
  limits: Pick<
    EngineOptions,
    "readMaxBytes" | "bufferedBytesPerConnection" | "bufferedBytesPerProcess" | "bodyIdleTimeoutMs"
  > = {},
) {
  const seen: SeenCall[] = [];
  // Each StreamUserActivities of user 99 whose client went away, counted.
  let abortedCount = 0;
  const onAborted = new Set<() => void>();
  const resolveAborted = () => {
    abortedCount++;
    for (const wake of onAborted) wake();
  };
  /** Resolves once `count` such streams have seen their client go away. */
  const aborted = (count = 1) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (abortedCount < count) return;
        onAborted.delete(check);
        resolve();
      };
      onAborted.add(check);
      check();
    });
  const recorder: Interceptor = (next) => async (req) => {
    seen.push({
      procedure: `${req.service.typeName}/${req.method.name}`,
      stream: req.stream,
      header: req.header,
      subject: req.contextValues.get(principalKey)?.subject,
      peer: req.contextValues.get(peerKey),
      message: req.stream ? undefined : req.message,
    });
    return next(req);
  };
  const created = timestampFromMs(Date.UTC(2024, 0, 2, 3, 4, 5));
  const impl: Partial<ServiceImpl<typeof UserService>> = {
    getUser(req, ctx) {
      const call = seen.at(-1);
      if (call !== undefined) call.ctx = ctx;
      if (req.userId === 404n)
        throw new ConnectError(`user ${req.userId} not found`, Code.NotFound);
      if (req.userId === 429n) {
        throw new ConnectError("slow down", Code.ResourceExhausted, { "retry-after": "3" });
      }
      return {
        user: {
          userId: req.userId,
          username: "ada",
          email: "ada@example.com",
          status: UserStatus.ACTIVE,
          createdAt: created,
          tags: ["admin"],
          metadata: { team: "core" },
        },
      };
    },
    createUser(req) {
      if (req.username === "taken") {
        throw new ConnectError("username taken", Code.AlreadyExists);
      }
      return { user: { userId: 1n, username: req.username, email: req.email } };
    },
    listUsers(req) {
      const users = Array.from({ length: req.pageSize }, (_, i) => ({
        userId: BigInt(i + 1),
        status: req.status,
      }));
      return { users, nextPageToken: "next" };
    },
    async *streamUserActivities(req, ctx) {
      if (req.userId === 403n) throw new ConnectError("not yours", Code.PermissionDenied);
      const count = req.userId === 13n ? 2 : req.userId === 99n ? 1 : 3;
      for (let i = 1; i <= count; i++) {
        yield {
          activityId: BigInt(i),
          userId: req.userId,
          action: "user.login",
          timestamp: created,
        };
      }
      if (req.userId === 13n) throw new ConnectError("store went away", Code.Unavailable);
      if (req.userId === 99n) {
        await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
        resolveAborted();
      }
    },
  };
  const routes = (router: ConnectRouter) => router.service(UserService, impl);
  const interceptors = [
    createRequestIdInterceptor(),
    createAuthenticationInterceptor({ secret, issuer: "keel", audience: "keel" }),
    recorder,
  ];
  const contextValues = (req: { socket: { remoteAddress?: string | undefined } }) =>
    createContextValues().set(peerKey, req.socket.remoteAddress ?? "");
  const engine = createEngine({ routes, interceptors, contextValues, ...limits });
  const rest = createRestHandler({ engine, services: [UserService] });
  const handler = connectNodeAdapter({
    routes,
    interceptors,
    contextValues,
    fallback: (req, res) => void rest(req, res),
  });

  const h1 = http.createServer(handler);
  const h2 = http2.createServer(handler);
  // REST on raw HTTP/2 streams, as keel's server serves it (no compatibility layer); every other
  // stream goes on to the compatibility layer's request handler.
  const h2Raw = http2.createServer(handler);
  const [toRequest] = h2Raw.listeners("stream") as ((...args: unknown[]) => void)[];
  h2Raw.removeAllListeners("stream");
  h2Raw.on("stream", (stream, headers, flags, rawHeaders) => {
    if (!rest.serveStream(stream, headers))
      toRequest?.call(h2Raw, stream, headers, flags, rawHeaders);
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  for (const server of [h2, h2Raw]) {
    server.on("session", (session) => {
      sessions.add(session);
      session.once("close", () => sessions.delete(session));
    });
  }
  const listen = (server: http.Server | http2.Http2Server) =>
    new Promise<string>((resolve) =>
      server.listen(0, "127.0.0.1", () => {
        resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      }),
    );
  const [h1Url, h2Url, h2RawUrl] = await Promise.all([listen(h1), listen(h2), listen(h2Raw)]);
  return {
    h1Url,
    h2Url,
    h2RawUrl,
    seen,
    /** Resolves once `count` (default 1) StreamUserActivities of user 99 saw their client go away. */
    aborted,
    close: () =>
      Promise.all([
        new Promise<void>((resolve) => {
          h1.close(() => resolve());
          h1.closeAllConnections();
        }),
        ...[h2, h2Raw].map(
          (server) =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
              for (const session of sessions) session.destroy();
            }),
        ),
      ]),
  };
}
