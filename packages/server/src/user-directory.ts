import { Code, ConnectError, createContextValues, type HandlerContext } from "@connectrpc/connect";
import type { UserClient } from "@keel/clients";
import { peerKey, remainingTimeMs, requestIdKey } from "@keel/interceptors";
import type { Logger } from "pino";

/** How OrderService learns whether a user exists. */
export interface UserDirectory {
  /**
   * Resolves when the user exists; throws FAILED_PRECONDITION when not, the caller's own error when
   * the check failed on the caller's account (deadline, cancellation, credentials, rate limit),
   * UNAVAILABLE when unsure.
   */
  requireUser(userId: bigint, ctx: HandlerContext): Promise<void>;
}

/**
 * Asks UserService with the typed client `connect` makes (once, on first use): in this process
 * through the engine's in-process transport, or over the network. It passes on the caller's
 * credentials, its address, its remaining deadline (the client's, or the server's default), its
 * cancellation, its request id and its trace (the call is a child span of the one being handled).
 * When UserService cannot be reached, the caller gets UNAVAILABLE and the log says why.
 */
export function createUserDirectory(options: {
  /** Makes the client; called once, on the first check. */
  connect: () => UserClient;
  /** Where UserService is, for the log: "in-process" or its URL. */
  where: string;
  logger: Pick<Logger, "warn">;
}): UserDirectory {
  let users: UserClient | undefined;
  return {
    async requireUser(userId, ctx) {
      users ??= options.connect();
      const headers = new Headers();
      // The caller's credentials, whichever kind: a token, or a machine's API key.
      for (const name of ["authorization", "x-api-key"]) {
        const value = ctx.requestHeader.get(name);
        if (value !== null) headers.set(name, value);
      }
      const requestId = ctx.values.get(requestIdKey);
      if (requestId !== "") headers.set("x-request-id", requestId);
      const remaining = remainingTimeMs(ctx);
      try {
        await users.getUser(
          { userId, fields: ["user_id"] },
          {
            headers,
            contextValues: createContextValues().set(peerKey, ctx.values.get(peerKey)),
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
          // The caller's own outcome, passed on as it came: its deadline, its cancellation, its
          // credentials, and its rate limit (the check is made with the caller's credentials, so
          // it counts against the caller's GetUser limit; the error's RetryInfo says when to retry).
          case Code.DeadlineExceeded:
          case Code.Canceled:
          case Code.Unauthenticated:
          case Code.PermissionDenied:
          case Code.ResourceExhausted:
            throw e;
          default:
            options.logger.warn(
              { err: e, userService: options.where, userId: String(userId) },
              "cannot reach UserService to check a user",
            );
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
