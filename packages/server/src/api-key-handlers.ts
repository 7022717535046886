import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { ApiKey, UserService } from "@keel/gen/user/v1/user_pb";
import { principalKey } from "@keel/interceptors";
import type { ApiKeyRecord, Store } from "@keel/store";
import type { ApiKeyVerifier } from "./api-key-verifier.ts";
import { generateApiKey } from "./api-keys.ts";

type Handlers = Pick<
  ServiceImpl<typeof UserService>,
  "createApiKey" | "listApiKeys" | "revokeApiKey"
>;

/** The most keys ListApiKeys returns, newest first. */
export const maxListedApiKeys = 1000;

/**
 * CreateApiKey, ListApiKeys and RevokeApiKey. Without a `secret` (none configured in production)
 * API keys are off: CreateApiKey answers FAILED_PRECONDITION saying which setting turns them on.
 */
export function createApiKeyHandlers(
  store: Store,
  secret: Uint8Array | undefined,
  verifier: Pick<ApiKeyVerifier, "forget"> | undefined,
): Handlers {
  return {
    async createApiKey(req, ctx) {
      if (secret === undefined) {
        throw new ConnectError(
          "API keys are off on this server: set KEEL_API_KEY_SECRET (auth.apiKeySecret) on every instance",
          Code.FailedPrecondition,
        );
      }
      const made = generateApiKey(secret);
      const record = await store.apiKeys.create({
        id: made.id,
        name: req.name,
        roles: [...new Set(req.roles)],
        hash: made.hash,
        createdAt: new Date(),
        createdBy: ctx.values.get(principalKey)?.subject ?? "",
        expiresAt: req.expiresAt === undefined ? undefined : timestampDate(req.expiresAt),
      });
      return { apiKey: toApiKey(record), key: made.key };
    },

    async listApiKeys() {
      return { apiKeys: (await store.apiKeys.list(maxListedApiKeys)).map(toApiKey) };
    },

    async revokeApiKey(req) {
      const record = await store.apiKeys.revoke(req.keyId, new Date());
      verifier?.forget(record.id);
      return { apiKey: toApiKey(record) };
    },
  };
}

function toApiKey(record: ApiKeyRecord): ApiKey {
  const time = (date: Date | undefined) =>
    date === undefined ? undefined : timestampFromDate(date);
  return {
    $typeName: "user.v1.ApiKey",
    keyId: record.id,
    name: record.name,
    roles: record.roles,
    createdAt: timestampFromDate(record.createdAt),
    createdBy: record.createdBy,
    expiresAt: time(record.expiresAt),
    revokedAt: time(record.revokedAt),
    lastUsedAt: time(record.lastUsedAt),
  };
}
