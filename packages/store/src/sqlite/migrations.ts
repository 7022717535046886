import type { DatabaseSync } from "node:sqlite";

/**
 * The SQLite schema, as an append-only list of versioned steps. A step, once released, is never
 * edited: change the schema by adding one. Times are milliseconds since the Unix epoch.
 */
const migrations: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: "users, activities and refresh tokens",
    sql: `
      CREATE TABLE users (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        username      TEXT    NOT NULL,
        username_key  TEXT    NOT NULL UNIQUE,
        email         TEXT    NOT NULL,
        email_key     TEXT    NOT NULL UNIQUE,
        status        INTEGER NOT NULL,
        tags          TEXT    NOT NULL DEFAULT '[]',
        metadata      TEXT    NOT NULL DEFAULT '{}',
        password_hash TEXT    NOT NULL,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
      );
      CREATE INDEX users_by_status ON users (status, id);

      CREATE TABLE activities (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id    INTEGER NOT NULL REFERENCES users (id),
        action     TEXT    NOT NULL,
        details    TEXT    NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL
      );
      CREATE INDEX activities_by_user ON activities (user_id, id);
      CREATE INDEX activities_by_user_time ON activities (user_id, created_at);

      CREATE TABLE refresh_tokens (
        jti         TEXT    PRIMARY KEY,
        family_id   TEXT    NOT NULL,
        user_id     INTEGER NOT NULL REFERENCES users (id),
        expires_at  INTEGER NOT NULL,
        created_at  INTEGER NOT NULL,
        revoked_at  INTEGER,
        replaced_by TEXT
      );
      CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
    `,
  },
  {
    version: 2,
    name: "orders, items, payments and order events",
    sql: `
      CREATE TABLE orders (
        id                  INTEGER PRIMARY KEY AUTOINCREMENT,
        -- No foreign key: the user belongs to UserService, which may keep another database.
        user_id             INTEGER NOT NULL,
        status              INTEGER NOT NULL,
        currency            TEXT    NOT NULL,
        total_minor         INTEGER NOT NULL,
        idempotency_key     TEXT,
        request_fingerprint TEXT,
        cancel_reason       TEXT    NOT NULL DEFAULT '',
        carrier             TEXT,
        tracking_number     TEXT,
        shipped_at          INTEGER,
        delivered_at        INTEGER,
        created_at          INTEGER NOT NULL,
        updated_at          INTEGER NOT NULL,
        UNIQUE (user_id, idempotency_key)
      );
      CREATE INDEX orders_by_user ON orders (user_id, id);
      CREATE INDEX orders_by_user_status ON orders (user_id, status, id);

      CREATE TABLE order_items (
        order_id         INTEGER NOT NULL REFERENCES orders (id),
        position         INTEGER NOT NULL,
        sku              TEXT    NOT NULL,
        name             TEXT    NOT NULL,
        quantity         INTEGER NOT NULL,
        unit_price_minor INTEGER NOT NULL,
        PRIMARY KEY (order_id, position)
      );

      CREATE TABLE payments (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        order_id        INTEGER NOT NULL REFERENCES orders (id),
        idempotency_key TEXT    NOT NULL,
        amount_minor    INTEGER NOT NULL,
        currency        TEXT    NOT NULL,
        paid_at         INTEGER NOT NULL,
        UNIQUE (order_id, idempotency_key)
      );

      CREATE TABLE order_events (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        order_id   INTEGER NOT NULL REFERENCES orders (id),
        type       INTEGER NOT NULL,
        status     INTEGER NOT NULL,
        data       TEXT    NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL
      );
      CREATE INDEX order_events_by_order ON order_events (order_id, id);
    `,
  },
  {
    version: 3,
    name: "user roles",
    sql: `ALTER TABLE users ADD COLUMN roles TEXT NOT NULL DEFAULT '[]';`,
  },
  {
    version: 4,
    name: "API keys",
    sql: `
      CREATE TABLE api_keys (
        id           TEXT    PRIMARY KEY,
        name         TEXT    NOT NULL,
        roles        TEXT    NOT NULL DEFAULT '[]',
        hash         TEXT    NOT NULL,
        created_at   INTEGER NOT NULL,
        created_by   TEXT    NOT NULL,
        expires_at   INTEGER,
        revoked_at   INTEGER,
        last_used_at INTEGER
      );
      CREATE INDEX api_keys_by_creation ON api_keys (created_at);
    `,
  },
];

/** The schema version this build migrates databases to. */
export const latestSchemaVersion = migrations.at(-1)?.version ?? 0;

/**
 * Brings the schema up to date. The check and the steps run under one write lock
 * (BEGIN IMMEDIATE), so several processes opening the same file at once migrate it once.
 */
export function migrate(db: DatabaseSync): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    INTEGER PRIMARY KEY,
      name       TEXT    NOT NULL,
      applied_at INTEGER NOT NULL
    )`);
    const row = db.prepare("SELECT MAX(version) AS version FROM schema_migrations").get();
    const current = Number(row?.version ?? 0);
    const latest = latestSchemaVersion;
    if (current > latest) {
      throw new Error(
        `the database schema is at version ${current}, newer than this build knows (${latest}); run a newer build`,
      );
    }
    const record = db.prepare(
      "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
    );
    for (const step of migrations) {
      if (step.version <= current) continue;
      db.exec(step.sql);
      record.run(step.version, step.name, Date.now());
    }
    db.exec("COMMIT");
  } catch (err) {
    db.exec("ROLLBACK");
    throw err;
  }
}
