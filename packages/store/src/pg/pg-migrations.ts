import type { Pool, PoolClient } from "pg";

/**
 * The PostgreSQL schema, as an append-only list of versioned steps (the same model as SQLite's,
 * in PostgreSQL's types). A released step is never edited: change the schema by adding one.
 */
const migrations: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: "users, activities and refresh tokens",
    sql: `
      CREATE TABLE users (
        id            BIGSERIAL   PRIMARY KEY,
        username      TEXT        NOT NULL,
        username_key  TEXT        NOT NULL CONSTRAINT users_username_unique UNIQUE,
        email         TEXT        NOT NULL,
        email_key     TEXT        NOT NULL CONSTRAINT users_email_unique UNIQUE,
        status        SMALLINT    NOT NULL,
        tags          JSONB       NOT NULL DEFAULT '[]',
        metadata      JSONB       NOT NULL DEFAULT '{}',
        password_hash TEXT        NOT NULL,
        created_at    TIMESTAMPTZ NOT NULL,
        updated_at    TIMESTAMPTZ NOT NULL
      );
      CREATE INDEX users_by_status ON users (status, id);

      CREATE TABLE activities (
        id         BIGSERIAL   PRIMARY KEY,
        user_id    BIGINT      NOT NULL REFERENCES users (id),
        action     TEXT        NOT NULL,
        details    JSONB       NOT NULL DEFAULT '{}',
        created_at TIMESTAMPTZ NOT NULL
      );
      CREATE INDEX activities_by_user ON activities (user_id, id);
      CREATE INDEX activities_by_user_time ON activities (user_id, created_at);

      CREATE TABLE refresh_tokens (
        jti         TEXT        PRIMARY KEY,
        family_id   TEXT        NOT NULL,
        user_id     BIGINT      NOT NULL REFERENCES users (id),
        expires_at  TIMESTAMPTZ NOT NULL,
        created_at  TIMESTAMPTZ NOT NULL,
        revoked_at  TIMESTAMPTZ,
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
        id                  BIGSERIAL   PRIMARY KEY,
        -- No foreign key: the user belongs to UserService, which may keep another database.
        user_id             BIGINT      NOT NULL,
        status              SMALLINT    NOT NULL,
        currency            TEXT        NOT NULL,
        total_minor         BIGINT      NOT NULL,
        idempotency_key     TEXT,
        request_fingerprint TEXT,
        cancel_reason       TEXT        NOT NULL DEFAULT '',
        carrier             TEXT,
        tracking_number     TEXT,
        shipped_at          TIMESTAMPTZ,
        delivered_at        TIMESTAMPTZ,
        created_at          TIMESTAMPTZ NOT NULL,
        updated_at          TIMESTAMPTZ NOT NULL,
        CONSTRAINT orders_idempotency_unique UNIQUE (user_id, idempotency_key)
      );
      CREATE INDEX orders_by_user ON orders (user_id, id);
      CREATE INDEX orders_by_user_status ON orders (user_id, status, id);

      CREATE TABLE order_items (
        order_id         BIGINT  NOT NULL REFERENCES orders (id),
        position         INTEGER NOT NULL,
        sku              TEXT    NOT NULL,
        name             TEXT    NOT NULL,
        quantity         INTEGER NOT NULL,
        unit_price_minor BIGINT  NOT NULL,
        PRIMARY KEY (order_id, position)
      );

      CREATE TABLE payments (
        id              BIGSERIAL   PRIMARY KEY,
        order_id        BIGINT      NOT NULL REFERENCES orders (id),
        idempotency_key TEXT        NOT NULL,
        amount_minor    BIGINT      NOT NULL,
        currency        TEXT        NOT NULL,
        paid_at         TIMESTAMPTZ NOT NULL,
        CONSTRAINT payments_idempotency_unique UNIQUE (order_id, idempotency_key)
      );

      CREATE TABLE order_events (
        id         BIGSERIAL   PRIMARY KEY,
        order_id   BIGINT      NOT NULL REFERENCES orders (id),
        type       SMALLINT    NOT NULL,
        status     SMALLINT    NOT NULL,
        data       TEXT        NOT NULL DEFAULT '{}',
        created_at TIMESTAMPTZ NOT NULL
      );
      CREATE INDEX order_events_by_order ON order_events (order_id, id);
    `,
  },
  {
    version: 3,
    name: "user roles",
    sql: `ALTER TABLE users ADD COLUMN roles JSONB NOT NULL DEFAULT '[]';`,
  },
  {
    version: 4,
    name: "rate limit buckets shared by instances",
    // UNLOGGED: cheaper writes; after a crash the table is empty, and every caller's bucket full.
    sql: `
      CREATE UNLOGGED TABLE rate_buckets (
        key     TEXT             PRIMARY KEY,
        tokens  DOUBLE PRECISION NOT NULL,
        at_ms   DOUBLE PRECISION NOT NULL,
        granted INTEGER          NOT NULL,
        full_ms DOUBLE PRECISION NOT NULL
      );
    `,
  },
  {
    version: 5,
    name: "API keys",
    sql: `
      CREATE TABLE api_keys (
        id           TEXT        PRIMARY KEY,
        name         TEXT        NOT NULL,
        roles        JSONB       NOT NULL DEFAULT '[]',
        hash         TEXT        NOT NULL,
        created_at   TIMESTAMPTZ NOT NULL,
        created_by   TEXT        NOT NULL,
        expires_at   TIMESTAMPTZ,
        revoked_at   TIMESTAMPTZ,
        last_used_at TIMESTAMPTZ
      );
      CREATE INDEX api_keys_by_creation ON api_keys (created_at);
    `,
  },
];

/**
 * Brings the schema up to date inside one transaction holding an advisory lock, so that several
 * instances starting at once migrate it exactly once: the others wait, then find it current.
 */
export async function migrate(client: PoolClient, schema: string): Promise<void> {
  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`keel-migrations:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    INTEGER     PRIMARY KEY,
      name       TEXT        NOT NULL,
      applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )`);
    const { rows } = await client.query<{ version: number | null }>(
      "SELECT MAX(version) AS version FROM schema_migrations",
    );
    const current = rows[0]?.version ?? 0;
    const latest = migrations.at(-1)?.version ?? 0;
    if (current > latest) {
      throw new Error(
        `the database schema is at version ${current}, newer than this build knows (${latest}); run a newer build`,
      );
    }
    for (const step of migrations) {
      if (step.version <= current) continue;
      await client.query(step.sql);
      await client.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [
        step.version,
        step.name,
      ]);
    }
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK");
    throw err;
  }
}

/** `migrate` on a connection of `pool`, released after. */
export async function migratePool(pool: Pool, schema: string): Promise<void> {
  const client = await pool.connect();
  try {
    await migrate(client, schema);
  } finally {
    client.release();
  }
}
