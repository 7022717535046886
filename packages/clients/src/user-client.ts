import { type Client, createClient } from "@connectrpc/connect";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { createTransport, type TransportOptions } from "./transport.ts";

/** A typed client of user.v1.UserService. */
export type UserClient = Client<typeof UserService>;

export type UserClientOptions = TransportOptions;

/**
 * Creates a typed UserService client. Calls share one HTTP/2 connection per client.
 *
 * ```ts
 * const users = createUserClient({ baseUrl: "http://127.0.0.1:9090" });
 * const { user } = await users.getUser({ userId: 1n });
 * ```
 */
export function createUserClient(options: UserClientOptions): UserClient {
  return createClient(UserService, createTransport(options));
}
