import type { DatabaseSync, SQLInputValue } from "node:sqlite";
import { apiKeyNotFound } from "../api-key-errors.ts";
import type { ApiKeyRecord, NewApiKey } from "../types.ts";

type Row = Record<string, SQLInputValue>;

/** API keys in SQLite; methods run synchronously. */
export class SqliteApiKeys {
  private readonly sql: ReturnType<typeof prepare>;

  constructor(db: DatabaseSync) {
    this.sql = prepare(db);
  }

  create(key: NewApiKey): ApiKeyRecord {
    // A taken id fails on the primary key: `already_exists`, field `key_id` (see translate).
    this.sql.insert.run(
      key.id,
      key.name,
      JSON.stringify(key.roles),
      key.hash,
      key.createdAt.getTime(),
      key.createdBy,
      key.expiresAt?.getTime() ?? null,
    );
    return this.mustGet(key.id);
  }

  get(id: string): ApiKeyRecord | undefined {
    const row = this.sql.get.get(id);
    return row === undefined ? undefined : toApiKey(row);
  }

  list(limit: number): ApiKeyRecord[] {
    return this.sql.list.all(limit).map(toApiKey);
  }

  revoke(id: string, at: Date): ApiKeyRecord {
    this.sql.revoke.run(at.getTime(), id);
    return this.mustGet(id);
  }

  touch(id: string, at: Date): void {
    this.sql.touch.run(at.getTime(), id, at.getTime());
  }

  private mustGet(id: string): ApiKeyRecord {
    const key = this.get(id);
    if (key === undefined) throw apiKeyNotFound(id);
    return key;
  }
}

function prepare(db: DatabaseSync) {
  return {
    insert: db.prepare(`
      INSERT INTO api_keys (id, name, roles, hash, created_at, created_by, expires_at)
      VALUES (?, ?, ?, ?, ?, ?, ?)`),
    get: db.prepare("SELECT * FROM api_keys WHERE id = ?"),
    list: db.prepare("SELECT * FROM api_keys ORDER BY created_at DESC, id DESC LIMIT ?"),
    revoke: db.prepare("UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?"),
    touch: db.prepare(
      "UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
    ),
  };
}

function toApiKey(row: Row): ApiKeyRecord {
  const time = (value: SQLInputValue) => (value === null ? undefined : new Date(Number(value)));
  return {
    id: String(row.id),
    name: String(row.name),
    roles: JSON.parse(String(row.roles)) as string[],
    hash: String(row.hash),
    createdAt: new Date(Number(row.created_at)),
    createdBy: String(row.created_by),
    expiresAt: time(row.expires_at ?? null),
    revokedAt: time(row.revoked_at ?? null),
    lastUsedAt: time(row.last_used_at ?? null),
  };
}
