import { timestampDate } from "@bufbuild/protobuf/wkt";
import { createClient, type Transport } from "@connectrpc/connect";
import { UserService } from "@keel/gen/user/v1/user_pb";

/** Who is logged in. Kept in memory only: reloading the page logs out. */
export interface Session {
  username: string;
  userId: string;
  /** Sent as `authorization: Bearer <accessToken>` with every call. */
  accessToken: string;
  /** When the access token stops being accepted; undefined when the server did not say. */
  expiresAt: Date | undefined;
}

/**
 * Logs in with UserService.Login. A wrong username or password rejects with the server's
 * UNAUTHENTICATED ConnectError.
 */
export async function login(
  transport: Transport,
  credentials: { username: string; password: string },
): Promise<Session> {
  const res = await createClient(UserService, transport).login(credentials);
  return {
    username: credentials.username,
    userId: res.userId.toString(),
    accessToken: res.accessToken,
    expiresAt: res.accessTokenExpiresAt ? timestampDate(res.accessTokenExpiresAt) : undefined,
  };
}
