import type { ServiceImpl } from "@connectrpc/connect";
import { UserService } from "@keel/gen/user/v1/user_pb";
import type { Store } from "@keel/store";
import type { AccountGuard } from "./account-guard.ts";
import { createApiKeyHandlers } from "./api-key-handlers.ts";
import type { ApiKeyVerifier } from "./api-key-verifier.ts";
import { createAuthHandlers } from "./auth-handlers.ts";
import { mapStoreErrors } from "./map-store-errors.ts";
import type { PasswordHasher } from "./passwords.ts";
import type { TokenIssuer } from "./tokens.ts";
import { createUserHandlers } from "./user-handlers.ts";
import { createUserStreamHandlers } from "./user-streams.ts";

export interface UserServiceDeps {
  store: Store;
  passwords: PasswordHasher;
  tokens: TokenIssuer;
  /** Told of status changes and revoked logins here, so that they take effect at once. */
  accounts?: Pick<AccountGuard, "forget" | "forgetSession">;
  /** The API key secret; undefined: API keys are off. */
  apiKeySecret?: Uint8Array | undefined;
  /** Told of revoked API keys here, so that they are refused at once. */
  apiKeys?: Pick<ApiKeyVerifier, "forget"> | undefined;
}

/** The implementation of user.v1.UserService; store errors leave it as ConnectErrors. */
export function createUserService(deps: UserServiceDeps): ServiceImpl<typeof UserService> {
  return mapStoreErrors(UserService, {
    ...createUserHandlers(deps.store, deps.passwords),
    ...createUserStreamHandlers(deps.store, deps.accounts),
    ...createAuthHandlers(deps.store, deps.passwords, deps.tokens, deps.accounts),
    ...createApiKeyHandlers(deps.store, deps.apiKeySecret, deps.apiKeys),
  });
}
