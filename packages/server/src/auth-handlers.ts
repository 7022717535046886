import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { type UserService, UserStatus } from "@keel/gen/user/v1/user_pb";
import type { Store } from "@keel/store";
import { type AccountGuard, accountSuspended } from "./account-guard.ts";
import type { PasswordHasher } from "./passwords.ts";
import type { IssuedTokens, TokenIssuer } from "./tokens.ts";
import { hashCaller } from "./user-handlers.ts";

type Handlers = Pick<ServiceImpl<typeof UserService>, "login" | "refreshToken">;

/** Login and RefreshToken. */
export function createAuthHandlers(
  store: Store,
  passwords: PasswordHasher,
  tokens: TokenIssuer,
  accounts?: Pick<AccountGuard, "forgetSession">,
): Handlers {
  return {
    async login(req, ctx) {
      const by = hashCaller(ctx);
      const found = await store.users.findCredentials(req.username);
      if (found === undefined) {
        await passwords.waste(req.password, by);
        throw badCredentials();
      }
      if (!(await passwords.verify(req.password, found.passwordHash, by))) throw badCredentials();
      if (found.user.status === UserStatus.SUSPENDED) throw accountSuspended();
      const issued = await tokens.issue(found.user.id, found.user.roles);
      await store.refreshTokens.create(issued.refresh);
      await store.activities.record(found.user.id, "user.login", { method: "password" });
      return tokenResponse(issued);
    },

    async refreshToken(req) {
      const claims = await tokens.verifyRefresh(req.refreshToken);
      const user = await store.users.get(claims.userId);
      if (user === undefined || user.status === UserStatus.SUSPENDED) {
        await store.refreshTokens.revokeFamily(claims.familyId);
        accounts?.forgetSession(claims.familyId);
        throw user === undefined ? invalidRefresh() : accountSuspended();
      }
      // Roles are read again, so that a refresh picks up granted or withdrawn ones.
      const issued = await tokens.issue(claims.userId, user.roles, claims.familyId);
      const outcome = await store.refreshTokens.rotate(claims.jti, issued.refresh, new Date());
      if (outcome.kind === "reused") {
        // The store revoked the whole login: its access tokens stop too (see AccountGuard).
        accounts?.forgetSession(claims.familyId);
        throw new ConnectError(
          "refresh token was already used; every session of that login is revoked, log in again",
          Code.Unauthenticated,
        );
      }
      if (outcome.kind !== "rotated") throw invalidRefresh();
      return tokenResponse(issued);
    },
  };
}

/** The fields LoginResponse and RefreshTokenResponse share (all of them). */
function tokenResponse(issued: IssuedTokens) {
  return {
    accessToken: issued.accessToken,
    refreshToken: issued.refreshToken,
    accessTokenExpiresAt: timestampFromDate(issued.accessExpiresAt),
    refreshTokenExpiresAt: timestampFromDate(issued.refreshExpiresAt),
    tokenType: "Bearer",
    userId: issued.refresh.userId,
  };
}

function badCredentials(): ConnectError {
  return new ConnectError("invalid username or password", Code.Unauthenticated);
}

function invalidRefresh(): ConnectError {
  return new ConnectError("invalid refresh token; log in again", Code.Unauthenticated);
}
