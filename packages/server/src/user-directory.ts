import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { createUserClient, type UserClient } from "@keel/clients";

/** How OrderService learns whether a user exists. */
export interface UserDirectory {
  /** Resolves when the user exists; throws FAILED_PRECONDITION when not, UNAVAILABLE when unsure. */
  requireUser(userId: bigint, ctx: HandlerContext): Promise<void>;
}

/**
 * Asks UserService over the network with the typed client, passing on the caller's credentials,
 * its remaining deadline and its cancellation.
 */
export function createRemoteUserDirectory(options: {
  /** Where UserService listens; a function when that is known only once the server listens. */
  baseUrl: string | (() => string);
}): UserDirectory {
  let users: UserClient | undefined;
  return {
    async requireUser(userId, ctx) {
      users ??= createUserClient({
        baseUrl: typeof options.baseUrl === "string" ? options.baseUrl : options.baseUrl(),
        protocol: "grpc",
        timeoutMs: 0,
      });
      const headers = new Headers();
      const authorization = ctx.requestHeader.get("authorization");
      if (authorization !== null) headers.set("authorization", authorization);
      const remaining = ctx.timeoutMs();
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
