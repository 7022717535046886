import { apiKeyNotFound } from "../api-key-errors.ts";
import type { ApiKeyRepository } from "../types.ts";
import type { Queryable } from "./pg-store.ts";

interface ApiKeyRow {
  id: string;
  name: string;
  roles: string[];
  hash: string;
  created_at: Date;
  created_by: string;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

/**
 * API keys in PostgreSQL, each method one statement. `run` maps failures to StoreErrors (a taken
 * id: `already_exists`, field `key_id`).
 */
export function createPgApiKeys(
  db: Queryable,
  run: <T>(step: () => Promise<T>) => Promise<T>,
): ApiKeyRepository {
  const get = async (id: string) => {
    const { rows } = await db.query<ApiKeyRow>("SELECT * FROM api_keys WHERE id = $1", [id]);
    return rows[0] === undefined ? undefined : toApiKey(rows[0]);
  };
  return {
    create: (key) =>
      run(async () => {
        const { rows } = await db.query<ApiKeyRow>(
          `INSERT INTO api_keys (id, name, roles, hash, created_at, created_by, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
          [
            key.id,
            key.name,
            JSON.stringify(key.roles),
            key.hash,
            key.createdAt,
            key.createdBy,
            key.expiresAt ?? null,
          ],
        );
        return toApiKey(rows[0] as ApiKeyRow);
      }),
    get: (id) => run(() => get(id)),
    list: (limit) =>
      run(async () => {
        const { rows } = await db.query<ApiKeyRow>(
          "SELECT * FROM api_keys ORDER BY created_at DESC, id DESC LIMIT $1",
          [limit],
        );
        return rows.map(toApiKey);
      }),
    revoke: (id, at) =>
      run(async () => {
        const { rows } = await db.query<ApiKeyRow>(
          "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2 RETURNING *",
          [at, id],
        );
        if (rows[0] === undefined) throw apiKeyNotFound(id);
        return toApiKey(rows[0]);
      }),
    touch: (id, at) =>
      run(async () => {
        await db.query(
          "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
          [at, id],
        );
      }),
  };
}

function toApiKey(row: ApiKeyRow) {
  return {
    id: row.id,
    name: row.name,
    roles: row.roles,
    hash: row.hash,
    createdAt: row.created_at,
    createdBy: row.created_by,
    expiresAt: row.expires_at ?? undefined,
    revokedAt: row.revoked_at ?? undefined,
    lastUsedAt: row.last_used_at ?? undefined,
  };
}
