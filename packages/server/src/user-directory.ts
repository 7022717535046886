import { Code, ConnectError, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { createUserClient, type UserClient } from "@keel/clients";
import { remainingTimeMs, requestIdKey } from "@keel/interceptors";
import { createClientTracingInterceptor } from "@keel/observability";

/** How OrderService learns whether a user exists. */
export interface UserDirectory {
  /** Resolves when the user exists; throws FAILED_PRECONDITION when not, UNAVAILABLE when unsure. */
  requireUser(userId: bigint, ctx: HandlerContext): Promise<void>;
}

/**
 * Asks UserService over the network with the typed client, passing on the caller's credentials,
 * its remaining deadline (the client's, or the server's default), its cancellation, its request
 * id and its trace (the call is a child span of the one being handled).
 */
export function createRemoteUserDirectory(options: {
  /** Where UserService listens; a function when that is known only once the server listens. */
  baseUrl: string | (() => string);
  /** More client interceptors, such as client metrics. */
  interceptors?: Interceptor[];
}): UserDirectory {
  let users: UserClient | undefined;
  return {
    async requireUser(userId, ctx) {
      users ??= createUserClient({
        baseUrl: typeof options.baseUrl === "string" ? options.baseUrl : options.baseUrl(),
        protocol: "grpc",
        timeoutMs: 0,
        interceptors: [createClientTracingInterceptor(), ...(options.interceptors ?? [])],
      });
      const headers = new Headers();
      const authorization = ctx.requestHeader.get("authorization");
      if (authorization !== null) headers.set("authorization", authorization);
      const requestId = ctx.values.get(requestIdKey);
      if (requestId !== "") headers.set("x-request-id", requestId);
      const remaining = remainingTimeMs(ctx);
      try {
        await users.getUser(
          { userId, fields: ["user_id"] },
          {
            headers,
            signal: ctx.signal,
            ...(remaining === undefined ? {} : { timeoutMs: remaining }),
          },
        );
      } catch (err) {
        const e = ConnectError.from(err);
        switch (e.code) {
          case Code.NotFound:
            throw new ConnectError(
              `user ${userId} does not exist`,
              Code.FailedPrecondition,
              undefined,
              undefined,
              e,
            );
          case Code.DeadlineExceeded:
          case Code.Canceled:
          case Code.Unauthenticated:
          case Code.PermissionDenied:
            throw e;
          default:
            throw new ConnectError(
              "cannot reach UserService to check the user; retry later",
              Code.Unavailable,
              undefined,
              undefined,
              e,
            );
        }
      }
    },
  };
}
