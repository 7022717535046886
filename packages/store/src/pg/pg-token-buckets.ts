import pg from "pg";
import { migratePool } from "./pg-migrations.ts";
import { translate } from "./pg-store.ts";

export interface PostgresTokenBucketsOptions {
  /** For example `postgres://user@127.0.0.1:5432/keel`. */
  connectionString: string;
  /** The schema keel's tables live in (the store's); migrated when behind. Default "public". */
  schema?: string;
  /** Connections kept for rate limits, apart from the store's. Default 2. */
  poolSize?: number;
  /**
   * How long PostgreSQL may work on one statement, and the pool wait for a connection, in ms;
   * past it the statement is cancelled and `take` rejects. Default 1000.
   */
  timeoutMs?: number;
  /** Receives errors no caller waits for (a lost idle connection). */
  onError?: (err: unknown) => void;
}

/** Token buckets in one PostgreSQL table, shared by every instance that uses it. */
export interface PostgresTokenBuckets {
  /**
   * Refills the bucket `key` at `limit` (a new bucket is full) and takes up to `count` whole
   * tokens, in one statement and one round trip, on the database's clock: how many were taken,
   * and when fewer than asked, the ms until the next whole token.
   */
  take(
    key: string,
    limit: { ratePerSecond: number; burst: number },
    count: number,
  ): Promise<{ granted: number; waitMs: number }>;
  /** Deletes the buckets that are full again (idle): they are the same as no row. */
  sweep(): Promise<number>;
  close(): Promise<void>;
}

// $2: tokens per ms, $3: burst, $4: tokens asked for. `avail` is written out in each SET
// expression, where it reads the row as it was.
const now = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)";
const avail = "LEAST($3, b.tokens + GREATEST(0, EXCLUDED.at_ms - b.at_ms) * $2)";
const grant = `LEAST($4, FLOOR(${avail} + 1e-9))`;
const takeSql = `
  INSERT INTO rate_buckets AS b (key, tokens, at_ms, granted, full_ms)
  VALUES ($1, $3 - LEAST($4, FLOOR($3)), ${now}, LEAST($4, FLOOR($3)),
          ${now} + LEAST($4, FLOOR($3)) / $2)
  ON CONFLICT (key) DO UPDATE SET
    granted = ${grant},
    tokens = ${avail} - ${grant},
    full_ms = EXCLUDED.at_ms + ($3 - (${avail} - ${grant})) / $2,
    at_ms = EXCLUDED.at_ms
  RETURNING granted, tokens`;

/**
 * Opens token buckets in PostgreSQL for rate limits shared by instances (see the interceptors'
 * `createSharedBuckets`): one row per bucket in an UNLOGGED table, refilled and taken from by
 * one `INSERT … ON CONFLICT DO UPDATE`, so concurrent instances serialise on the row and never
 * hand out a token twice. Its own small pool keeps rate limits apart from the store's queries,
 * and every statement is cancelled after `timeoutMs`. Full buckets are deleted every minute.
 */
export async function openPostgresTokenBuckets(
  options: PostgresTokenBucketsOptions,
): Promise<PostgresTokenBuckets> {
  const schema = options.schema ?? "public";
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new Error(
      `invalid schema name ${JSON.stringify(schema)}: use lower-case letters, digits and _`,
    );
  }
  const timeoutMs = options.timeoutMs ?? 1000;
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolSize ?? 2,
    options: `-c search_path=${schema} -c statement_timeout=${timeoutMs}`,
    connectionTimeoutMillis: timeoutMs,
  });
  pool.on("error", options.onError ?? (() => {}));
  try {
    await migratePool(pool, schema);
  } catch (err) {
    await pool.end();
    throw translate(err);
  }
  const sweep = async () => {
    const result = await pool.query(`DELETE FROM rate_buckets WHERE full_ms < ${now}`);
    return result.rowCount ?? 0;
  };
  const sweeper = setInterval(() => void sweep().catch(options.onError ?? (() => {})), 60_000);
  sweeper.unref();
  return {
    async take(key, limit, count) {
      const perMs = limit.ratePerSecond / 1000;
      const { rows } = await pool.query<{ granted: number; tokens: number }>(takeSql, [
        key,
        perMs,
        limit.burst,
        count,
      ]);
      const row = rows[0];
      if (row === undefined) throw new Error("the token bucket statement returned no row");
      const granted = Number(row.granted);
      return { granted, waitMs: granted < count ? Math.max(0, (1 - row.tokens) / perMs) : 0 };
    },
    sweep,
    async close() {
      clearInterval(sweeper);
      await pool.end();
    },
  };
}
