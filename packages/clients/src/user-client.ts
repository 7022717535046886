import { type Client, createClient } from "@connectrpc/connect";
import { UserService } from "@keel/gen/user/v1/user_pb";
import {
  type ClientOptions,
  createClientTransport,
  withHealthService,
} from "./client-transport.ts";

/** A typed client of user.v1.UserService. */
export type UserClient = Client<typeof UserService>;

/** `ClientOptions`; health checks watch "user.v1.UserService" unless told otherwise. */
export type UserClientOptions = ClientOptions;

/**
 * Creates a typed UserService client over one endpoint (`baseUrl`) or several (`endpoints`),
 * with balancing, retries of idempotent calls, circuit breakers and a default deadline; see
 * `ClientOptions`. Calls share one HTTP/2 connection per endpoint.
 *
 * ```ts
 * const users = createUserClient({ endpoints: ["http://keel-0:9090", "http://keel-1:9090"], token });
 * const { user } = await users.getUser({ userId: 1n });
 * ```
 */
export function createUserClient(options: UserClientOptions): UserClient {
  return createClient(
    UserService,
    createClientTransport(withHealthService(options, UserService.typeName)),
  );
}
