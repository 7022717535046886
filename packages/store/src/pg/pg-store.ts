import type { UserStatus } from "@keel/gen/user/v1/user_pb";
import pg from "pg";
import { type BusEvent, encodeBusEvent } from "../event-codec.ts";
import { StoreError } from "../store-error.ts";
import type {
  ActivityRecord,
  ActivityRepository,
  ApiKeyRepository,
  RefreshTokenRecord,
  RefreshTokenRepository,
  RotateOutcome,
  Store,
  StoreStats,
  UserRecord,
  UserRepository,
} from "../types.ts";
import { alreadyTaken, describeUserChange, foldKey, userNotFound } from "../user-change.ts";
import { createBatchLoader } from "./batch-loader.ts";
import { createPgApiKeys } from "./pg-api-keys.ts";
import { PgEventBus } from "./pg-event-bus.ts";
import { migratePool } from "./pg-migrations.ts";
import { PgOrders } from "./pg-orders.ts";
import { keelTypes } from "./pg-types.ts";

export interface PostgresStoreOptions {
  /** For example `postgres://user@127.0.0.1:5432/keel`. */
  connectionString: string;
  /** The schema keel's tables live in; created when missing. Default "public". */
  schema?: string;
  /** Connections in the pool; default 10. */
  poolSize?: number;
  /** Receives errors that no caller waits for (a lost idle connection, the event listener). */
  onError?: (err: unknown) => void;
  /**
   * Called with the SQL of every query sent on the pool's connections, before it is sent (BEGIN
   * and COMMIT included): for counting round trips per call in tests or tracing them. Default none.
   */
  onQuery?: (sql: string) => void;
}

/** What a query runs on: the pool, or the client of a transaction. */
export type Queryable = Pick<pg.PoolClient, "query">;

/**
 * Opens the PostgreSQL store: connects, migrates (once, whatever the number of instances starting
 * together) and starts listening for the events other instances publish.
 */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  const schema = options.schema ?? "public";
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new Error(
      `invalid schema name ${JSON.stringify(schema)}: use lower-case letters, digits and _`,
    );
  }
  const onError = options.onError ?? (() => {});
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolSize ?? 10,
    // UTC, so that every timestamptz comes back in the one form `keelTypes` reads quickly.
    options: `-c search_path=${schema} -c TimeZone=UTC`,
    types: keelTypes,
  });
  // An idle connection that dies emits here; without a listener it would crash the process.
  pool.on("error", onError);
  const onQuery = options.onQuery;
  const counters = { queries: 0, exhausted: 0 };
  // Every statement sent on a pool connection is counted (round trips, for metrics), and shown
  // to `onQuery` when one is given.
  pool.on("connect", (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    client.query = ((...args: unknown[]) => {
      counters.queries++;
      if (onQuery !== undefined) {
        const first = args[0] as string | { text?: string };
        onQuery(typeof first === "string" ? first : (first.text ?? ""));
      }
      return query(...args);
    }) as typeof client.query;
  });
  const bus = new PgEventBus({
    connectionString: options.connectionString,
    channel: `keel_events_${schema}`,
    onError,
  });
  try {
    await migratePool(pool, schema);
    await bus.start();
  } catch (err) {
    await bus.close();
    await pool.end();
    throw translate(err);
  }
  return new PgStore(pool, bus, `keel_events_${schema}`, counters);
}

class PgStore implements Store {
  readonly users: UserRepository;
  readonly activities: ActivityRepository;
  readonly refreshTokens: RefreshTokenRepository;
  readonly orders;
  readonly apiKeys: ApiKeyRepository;
  readonly events: PgEventBus;
  private readonly pool: pg.Pool;
  private readonly channel: string;
  private readonly counters: { queries: number; exhausted: number };
  private open = true;

  constructor(
    pool: pg.Pool,
    bus: PgEventBus,
    channel: string,
    counters: { queries: number; exhausted: number },
  ) {
    this.pool = pool;
    this.counters = counters;
    this.events = bus;
    this.channel = channel;
    const run = <A extends unknown[], T>(fn: (...args: A) => Promise<T>) => {
      return (...args: A) => this.run(() => fn(...args));
    };
    this.users = {
      create: run((user) =>
        this.transaction(async (c) => {
          const now = new Date();
          const { rows } = await c.query(
            `INSERT INTO users (username, username_key, email, email_key, status, tags, metadata,
                                password_hash, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, '{}', $7, $8, $8) RETURNING *`,
            [
              user.username,
              foldKey(user.username),
              user.email,
              foldKey(user.email),
              user.status,
              JSON.stringify(user.tags),
              user.passwordHash,
              now,
            ],
          );
          const record = toUser(rows[0]);
          await this.insertActivity(c, record.id, "user.created", { username: user.username }, now);
          return record;
        }),
      ),
      // Every GetUser, and the account check of every authenticated call, asks this: the calls
      // of one turn of the event loop share one query.
      get: run(
        createBatchLoader<bigint, UserRecord>({
          load: async (ids) => {
            const { rows } = await this.pool.query({
              name: "keel_users_by_ids",
              text: `SELECT ${userColumns} FROM users WHERE id = ANY($1::int8[])`,
              values: [ids],
            });
            return new Map(rows.map((row) => [BigInt(row.id), toUser(row)]));
          },
        }),
      ),
      checkAvailable: run(async (username, email) => {
        const { rows } = await this.pool.query(
          `SELECT username_key = $1 AS username FROM users WHERE username_key = $1 OR email_key = $2
           ORDER BY username_key = $1 DESC LIMIT 1`,
          [foldKey(username), foldKey(email)],
        );
        if (rows[0] !== undefined) throw alreadyTaken(rows[0].username ? "username" : "email");
      }),
      findCredentials: run(async (username) => {
        const { rows } = await this.pool.query("SELECT * FROM users WHERE username_key = $1", [
          foldKey(username),
        ]);
        const row = rows[0];
        return row === undefined
          ? undefined
          : { user: toUser(row), passwordHash: row.password_hash };
      }),
      list: run(async (query) => {
        const { rows } =
          query.status === undefined
            ? await this.pool.query("SELECT * FROM users WHERE id > $1 ORDER BY id LIMIT $2", [
                query.afterId ?? 0n,
                query.limit,
              ])
            : await this.pool.query(
                "SELECT * FROM users WHERE status = $1 AND id > $2 ORDER BY id LIMIT $3",
                [query.status, query.afterId ?? 0n, query.limit],
              );
        return rows.map(toUser);
      }),
      update: run((id, patch, origin) =>
        this.transaction(async (c) => {
          const { rows } = await c.query("SELECT * FROM users WHERE id = $1 FOR UPDATE", [id]);
          if (rows[0] === undefined) throw userNotFound(id);
          const before = toUser(rows[0]);
          const change = describeUserChange(before, patch);
          if (change === undefined) return before;
          const now = new Date();
          const after = change.after;
          const updated = await c.query(
            `UPDATE users SET username = $2, username_key = $3, email = $4, email_key = $5,
                              status = $6, tags = $7, metadata = $8, updated_at = $9
             WHERE id = $1 RETURNING *`,
            [
              id,
              after.username,
              foldKey(after.username),
              after.email,
              foldKey(after.email),
              after.status,
              JSON.stringify(after.tags),
              JSON.stringify(after.metadata),
              now,
            ],
          );
          for (const activity of change.activities) {
            await this.insertActivity(c, id, activity.action, activity.details, now);
          }
          if (change.statusChanged) {
            await this.notify(c, {
              kind: "status",
              status: { userId: id, status: after.status, at: now, origin },
            });
          }
          return toUser(updated.rows[0]);
        }),
      ),
      setRoles: run(async (id, roles) => {
        const { rows } = await this.pool.query(
          "UPDATE users SET roles = $1, updated_at = now() WHERE id = $2 RETURNING *",
          [JSON.stringify(roles), id],
        );
        if (rows[0] === undefined) throw userNotFound(id);
        return toUser(rows[0]);
      }),
    };
    this.activities = {
      record: run((userId, action, details) =>
        this.transaction(async (c) => {
          // Activities of one user are written under its row lock, so that their ids increase in
          // commit order: a live subscriber can then skip what it already read by id.
          const { rowCount } = await c.query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", [
            userId,
          ]);
          if (rowCount === 0) throw userNotFound(userId);
          return this.insertActivity(c, userId, action, details, new Date());
        }),
      ),
      list: run(async (userId, query) => {
        const { rows } = await this.pool.query(
          `SELECT * FROM activities WHERE user_id = $1 AND id > $2 AND created_at >= $3
           ORDER BY id LIMIT $4`,
          [userId, query.afterId ?? 0n, query.since ?? new Date(0), query.limit],
        );
        return rows.map(toActivity);
      }),
    };
    this.refreshTokens = {
      create: run(async (token: RefreshTokenRecord) => {
        await this.pool.query(
          `INSERT INTO refresh_tokens (jti, family_id, user_id, expires_at, created_at)
           VALUES ($1, $2, $3, $4, now())`,
          [token.jti, token.familyId, token.userId, token.expiresAt],
        );
      }),
      rotate: run((jti, next, now) =>
        this.transaction(async (c): Promise<RotateOutcome> => {
          const { rows } = await c.query("SELECT * FROM refresh_tokens WHERE jti = $1 FOR UPDATE", [
            jti,
          ]);
          const row = rows[0];
          if (row === undefined) return { kind: "invalid" };
          const userId = BigInt(row.user_id);
          if (row.revoked_at !== null) {
            await c.query(
              "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
              [now, row.family_id],
            );
            return { kind: "reused", userId };
          }
          if ((row.expires_at as Date).getTime() <= now.getTime()) return { kind: "invalid" };
          await c.query(
            "UPDATE refresh_tokens SET revoked_at = $1, replaced_by = $2 WHERE jti = $3",
            [now, next.jti, jti],
          );
          await c.query(
            `INSERT INTO refresh_tokens (jti, family_id, user_id, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5)`,
            [next.jti, next.familyId, next.userId, next.expiresAt, now],
          );
          return { kind: "rotated", userId };
        }),
      ),
      revokeFamily: run(async (familyId) => {
        await this.pool.query(
          "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
          [familyId],
        );
      }),
      familyActive: run(async (familyId, now) => {
        const { rowCount } = await this.pool.query(
          `SELECT 1 FROM refresh_tokens
           WHERE family_id = $1 AND revoked_at IS NULL AND expires_at > $2 LIMIT 1`,
          [familyId, now],
        );
        return (rowCount ?? 0) > 0;
      }),
    };
    const orders = new PgOrders(
      this.pool,
      (body) => this.transaction(body),
      (c, e) => this.notify(c, e),
    );
    this.orders = {
      create: run((order) => orders.create(order)),
      // GetOrder, and the owner check of every order call the first time it sees an order.
      get: run(createBatchLoader({ load: (ids: bigint[]) => orders.byIds(ids) })),
      list: run((query) => orders.list(query)),
      cancel: run((id, reason) => orders.cancel(id, reason)),
      pay: run((id, payment) => orders.pay(id, payment)),
      ship: run((id, shipment) => orders.ship(id, shipment)),
      addCheckpoint: run((id, checkpoint) => orders.addCheckpoint(id, checkpoint)),
      events: run((orderId, query) => orders.events(orderId, query)),
    } satisfies Store["orders"];
    this.apiKeys = createPgApiKeys(this.pool, (step) => this.run(step));
  }

  async ping(): Promise<void> {
    await this.run(() => this.pool.query("SELECT 1"));
  }

  async close(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    await this.events.close();
    await this.pool.end();
  }

  stats(): StoreStats {
    const pool = this.pool;
    return {
      queries: this.counters.queries,
      poolExhausted: this.counters.exhausted,
      poolTotal: pool.totalCount,
      poolIdle: pool.idleCount,
      poolWaiting: pool.waitingCount,
    };
  }

  private async run<T>(step: () => Promise<T>): Promise<T> {
    if (!this.open) throw new StoreError("unavailable", "the store is closed");
    const pool = this.pool;
    if (pool.idleCount === 0 && pool.totalCount >= (pool.options.max ?? 10))
      this.counters.exhausted++;
    try {
      return await step();
    } catch (err) {
      throw translate(err);
    }
  }

  /** Runs `body` in a transaction; NOTIFYs sent in it are delivered when it commits. */
  private async transaction<T>(body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      const result = await body(client);
      await client.query("COMMIT");
      return result;
    } catch (err) {
      await client.query("ROLLBACK").catch((rollbackErr: Error) => {
        broken = rollbackErr;
      });
      throw err;
    } finally {
      // A connection that cannot even roll back is discarded rather than reused.
      client.release(broken);
    }
  }

  private async insertActivity(
    c: Queryable,
    userId: bigint,
    action: string,
    details: Record<string, string>,
    now: Date,
  ): Promise<ActivityRecord> {
    const { rows } = await c.query(
      "INSERT INTO activities (user_id, action, details, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
      [userId, action, JSON.stringify(details), now],
    );
    const activity = { id: BigInt(rows[0].id), userId, action, details, createdAt: now };
    await this.notify(c, { kind: "activity", activity });
    return activity;
  }

  private async notify(c: Queryable, event: BusEvent): Promise<void> {
    await c.query({
      name: "keel_notify",
      text: "SELECT pg_notify($1, $2)",
      values: [this.channel, encodeBusEvent(event)],
    });
  }
}

// biome-ignore lint/suspicious/noExplicitAny: rows of pg queries are untyped
type PgRow = any;

/** What `toUser` reads: every column but the password hash. */
const userColumns = "id, username, email, status, tags, metadata, roles, created_at, updated_at";

function toUser(row: PgRow): UserRecord {
  return {
    id: BigInt(row.id),
    username: row.username,
    email: row.email,
    status: row.status as UserStatus,
    tags: row.tags,
    metadata: row.metadata,
    roles: row.roles,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toActivity(row: PgRow): ActivityRecord {
  return {
    id: BigInt(row.id),
    userId: BigInt(row.user_id),
    action: row.action,
    details: row.details,
    createdAt: row.created_at,
  };
}

const uniqueConstraints: Record<string, string> = {
  users_username_unique: "username",
  users_email_unique: "email",
  orders_idempotency_unique: "idempotency_key",
  api_keys_pkey: "key_id",
};

/** Maps PostgreSQL and connection failures to StoreErrors; anything else passes unchanged. */
export function translate(err: unknown): unknown {
  if (err instanceof StoreError || !(err instanceof Error)) return err;
  const code = (err as { code?: string }).code;
  if (code === "23505") {
    const field = uniqueConstraints[(err as { constraint?: string }).constraint ?? ""];
    return new StoreError("already_exists", `${field ?? "value"} is already taken`, {
      cause: err,
      ...(field === undefined ? {} : { field }),
    });
  }
  // Text the database cannot hold: a NUL in text (22021) or in JSON (22P05). Validation refuses
  // these first; this keeps one that slips through from surfacing as INTERNAL.
  if (code === "22021" || code === "22P05") {
    return new StoreError(
      "invalid_argument",
      "text must not contain the NUL character (U+0000) or invalid UTF-8",
      { cause: err },
    );
  }
  // Connection refused or lost, server shutting down, too many connections, out of resources.
  const unavailable =
    code === undefined
      ? /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|Connection terminated|timeout exceeded/i.test(
          err.message,
        )
      : /^(08|53|57P)/.test(code) ||
        ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENOTFOUND"].includes(code);
  if (unavailable) {
    return new StoreError("unavailable", `the database is unavailable: ${err.message}`, {
      cause: err,
    });
  }
  return err;
}
