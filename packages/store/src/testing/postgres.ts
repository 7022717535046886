import { randomBytes } from "node:crypto";
import pg from "pg";
import { openPostgresStore, type PostgresStoreOptions } from "../pg/pg-store.ts";
import type { Store } from "../types.ts";

/** The PostgreSQL that tests use: KEEL_TEST_DATABASE_URL, or the machine's local server. */
export const postgresUrl =
  process.env.KEEL_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

let probed: Promise<string | undefined> | undefined;

/**
 * Whether PostgreSQL tests can run: undefined when they can, otherwise the reason they are
 * skipped. In CI (CI=true) an unreachable database is an error, never a skip.
 */
export function postgresSkipReason(): Promise<string | undefined> {
  probed ??= (async () => {
    const client = new pg.Client({ connectionString: postgresUrl, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.query("SELECT 1");
      return undefined;
    } catch (err) {
      const reason = `PostgreSQL at ${postgresUrl} is unreachable (${(err as Error).message})`;
      if (process.env.CI === "true") {
        throw new Error(
          `${reason}; CI must run the PostgreSQL tests. Start it or set KEEL_TEST_DATABASE_URL.`,
        );
      }
      return `${reason}; set KEEL_TEST_DATABASE_URL to run these tests`;
    } finally {
      await client.end().catch(() => {});
    }
  })();
  return probed;
}

/** A schema name no other test run uses. */
export function freshSchema(): string {
  return `keel_test_${randomBytes(6).toString("hex")}`;
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

/** A PostgreSQL store in a fresh schema that is dropped when the store closes. */
export async function openTestPostgresStore(
  schema = freshSchema(),
  options: Pick<PostgresStoreOptions, "onQuery"> = {},
): Promise<Store> {
  const store = await openPostgresStore({
    connectionString: postgresUrl,
    schema,
    poolSize: 4,
    ...options,
  });
  const close = store.close.bind(store);
  return Object.assign(store, {
    async close() {
      await close();
      await dropSchema(schema);
    },
  });
}

/**
 * Takes an exclusive lock on `schema.table` in an open transaction, so that every statement on
 * the table waits (a database that does not answer, as its clients see it); the returned function
 * rolls back and lets them go.
 */
export async function lockTable(schema: string, table: string): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    await client.query("BEGIN");
    await client.query(`LOCK TABLE ${schema}.${table} IN ACCESS EXCLUSIVE MODE`);
  } catch (err) {
    await client.end();
    throw err;
  }
  return async () => {
    try {
      await client.query("ROLLBACK");
    } finally {
      await client.end();
    }
  };
}
