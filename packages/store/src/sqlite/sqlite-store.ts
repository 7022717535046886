import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync, type SQLOutputValue, type StatementSync } from "node:sqlite";
import type { UserStatus } from "@keel/gen/user/v1/user_pb";
import { type EventRelay, LocalEventBus } from "../local-event-bus.ts";
import { StoreError } from "../store-error.ts";
import { refuseNulText } from "../text-values.ts";
import type {
  ActivityRecord,
  ActivityRepository,
  ApiKeyRepository,
  ListActivitiesQuery,
  ListUsersQuery,
  NewUser,
  OrderRepository,
  RefreshTokenRecord,
  RefreshTokenRepository,
  RotateOutcome,
  StatusEvent,
  Store,
  UserPatch,
  UserRecord,
  UserRepository,
} from "../types.ts";
import { alreadyTaken, describeUserChange, foldKey, userNotFound } from "../user-change.ts";
import { restrictDatabaseFiles } from "./database-file-modes.ts";
import { migrate } from "./migrations.ts";
import { observeStatements } from "./observed-database.ts";
import { SqliteApiKeys } from "./sqlite-api-keys.ts";
import { SqliteOrders } from "./sqlite-orders.ts";

export interface SqliteStoreOptions {
  /** The database file; its directory is created when missing. `:memory:` only for throwaway use. */
  path: string;
  /** How long a write waits for another process's lock before failing as unavailable; default 5000 ms. */
  busyTimeoutMs?: number;
  /**
   * Shares live events with other processes using the same file (cluster workers). Default: live
   * events reach this process's subscribers only.
   */
  relay?: EventRelay;
  /**
   * Receives what the store changed on its own that an operator should know, such as a database
   * file found readable by others and restricted to its owner. Default: nowhere.
   */
  onWarning?: (message: string) => void;
  /**
   * Called with the SQL of every statement the store runs, before it runs: for counting queries
   * per call in tests or tracing them. Default none (statements are then not wrapped at all).
   */
  onQuery?: (sql: string) => void;
}

/**
 * Opens (creating and migrating when needed) the embedded SQLite store. Writes are durable once
 * they resolve: WAL journaling with synchronous=NORMAL survives the process being killed. The
 * database and its -wal and -shm files are readable by their owner only (0600).
 */
export function openSqliteStore(options: SqliteStoreOptions): Store {
  if (options.path !== ":memory:") {
    mkdirSync(dirname(options.path), { recursive: true });
    for (const warning of restrictDatabaseFiles(options.path)) options.onWarning?.(warning);
  }
  const db = new DatabaseSync(options.path, {
    enableForeignKeyConstraints: true,
    timeout: options.busyTimeoutMs ?? 5000,
  });
  if (options.onQuery !== undefined) observeStatements(db, options.onQuery);
  try {
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = NORMAL");
    migrate(db);
  } catch (err) {
    db.close();
    throw translate(err);
  }
  const store = new SqliteStore(db);
  if (options.relay !== undefined) store.events.connect(options.relay);
  return store;
}

class SqliteStore implements Store {
  readonly users: UserRepository;
  readonly activities: ActivityRepository;
  readonly refreshTokens: RefreshTokenRepository;
  readonly orders: OrderRepository;
  readonly apiKeys: ApiKeyRepository;
  readonly events = new LocalEventBus();
  private readonly db: DatabaseSync;
  private readonly sql: ReturnType<typeof prepareStatements>;
  private open = true;

  constructor(db: DatabaseSync) {
    this.db = db;
    this.sql = prepareStatements(db);
    // What changes data is refused text with a NUL first, as PostgreSQL refuses it.
    const write = <A extends unknown[], T>(change: (...args: A) => T) => {
      return (...args: A) =>
        this.run(() => {
          refuseNulText(args);
          return change(...args);
        });
    };
    this.users = {
      create: write((user) => this.createUser(user)),
      get: (id) => this.run(() => this.getUser(id)),
      checkAvailable: (username, email) =>
        this.run(() => {
          const row = this.sql.findTaken.get(foldKey(username), foldKey(email)) as
            | { username: bigint }
            | undefined;
          if (row !== undefined) throw alreadyTaken(row.username === 1n ? "username" : "email");
        }),
      findCredentials: (username) => this.run(() => this.findCredentials(username)),
      list: (query) => this.run(() => this.listUsers(query)),
      update: write((id, patch, origin) => this.updateUser(id, patch, origin)),
      setRoles: (id, roles) =>
        this.run(() => {
          const { changes } = this.sql.setRoles.run(JSON.stringify(roles), Date.now(), id);
          if (Number(changes) === 0) throw userNotFound(id);
          return this.mustGetUser(id);
        }),
    };
    this.activities = {
      record: write((userId, action, details) => {
        const activity = this.transaction(() =>
          this.insertActivity(userId, action, details, Date.now()),
        );
        this.events.publishActivity(activity);
        return activity;
      }),
      list: (userId, query) => this.run(() => this.listActivities(userId, query)),
    };
    this.refreshTokens = {
      create: write((token) => this.insertRefreshToken(token, Date.now())),
      rotate: write((jti, next, now) => this.rotateRefreshToken(jti, next, now)),
      revokeFamily: (familyId) =>
        this.run(() => {
          this.sql.revokeFamily.run(Date.now(), familyId);
        }),
      familyActive: (familyId, now) =>
        this.run(() => this.sql.familyActive.get(familyId, now.getTime()) !== undefined),
    };
    const apiKeys = new SqliteApiKeys(db);
    this.apiKeys = {
      create: (key) => this.run(() => apiKeys.create(key)),
      get: (id) => this.run(() => apiKeys.get(id)),
      list: (limit) => this.run(() => apiKeys.list(limit)),
      revoke: (id, at) => this.run(() => apiKeys.revoke(id, at)),
      touch: (id, at) => this.run(() => apiKeys.touch(id, at)),
    };
    const orders = new SqliteOrders(db, (body) => this.transaction(body), this.events);
    this.orders = {
      create: write((order) => orders.create(order)),
      get: (id) => this.run(() => orders.get(id)),
      list: (query) => this.run(() => orders.list(query)),
      cancel: write((id, reason) => orders.cancel(id, reason)),
      pay: write((id, payment) => orders.pay(id, payment)),
      ship: write((id, shipment) => orders.ship(id, shipment)),
      addCheckpoint: write((id, checkpoint) => orders.addCheckpoint(id, checkpoint)),
      events: (orderId, query) => this.run(() => orders.events(orderId, query)),
    };
  }

  ping(): Promise<void> {
    return this.run(() => {
      this.sql.ping.get();
    });
  }

  async close(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    this.events.closeAll();
    this.db.close();
  }

  /** Runs a synchronous database step as the async call the Store contract promises. */
  private run<T>(step: () => T): Promise<T> {
    if (!this.open) return Promise.reject(new StoreError("unavailable", "the store is closed"));
    try {
      return Promise.resolve(step());
    } catch (err) {
      return Promise.reject(translate(err));
    }
  }

  private transaction<T>(body: () => T): T {
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const result = body();
      this.db.exec("COMMIT");
      return result;
    } catch (err) {
      if (this.db.isTransaction) this.db.exec("ROLLBACK");
      throw err;
    }
  }

  private createUser(user: NewUser): UserRecord {
    const now = Date.now();
    const { record, activity } = this.transaction(() => {
      const result = this.sql.insertUser.run({
        username: user.username,
        username_key: foldKey(user.username),
        email: user.email,
        email_key: foldKey(user.email),
        status: user.status,
        tags: JSON.stringify(user.tags),
        metadata: "{}",
        password_hash: user.passwordHash,
        now,
      });
      const id = BigInt(result.lastInsertRowid);
      const activity = this.insertActivity(id, "user.created", { username: user.username }, now);
      return { record: this.mustGetUser(id), activity };
    });
    this.events.publishActivity(activity);
    return record;
  }

  private getUser(id: bigint): UserRecord | undefined {
    const row = this.sql.getUser.get(id) as ArrayRow | undefined;
    return row === undefined ? undefined : toUser(row);
  }

  private mustGetUser(id: bigint): UserRecord {
    const user = this.getUser(id);
    if (user === undefined) throw userNotFound(id);
    return user;
  }

  private findCredentials(username: string) {
    const row = this.sql.findCredentials.get(foldKey(username)) as ArrayRow | undefined;
    if (row === undefined) return undefined;
    return { user: toUser(row), passwordHash: String(row[userColumns.count]) };
  }

  private listUsers(query: ListUsersQuery): UserRecord[] {
    const afterId = query.afterId ?? 0n;
    const rows =
      query.status === undefined
        ? this.sql.listUsers.all(afterId, query.limit)
        : this.sql.listUsersByStatus.all(query.status, afterId, query.limit);
    return (rows as unknown as ArrayRow[]).map(toUser);
  }

  private updateUser(id: bigint, patch: UserPatch, origin: string | undefined): UserRecord {
    const now = Date.now();
    const outcome = this.transaction(() => {
      const before = this.mustGetUser(id);
      const change = describeUserChange(before, patch);
      if (change === undefined) return { user: before, activities: [], status: undefined };
      const after = change.after;
      this.sql.updateUser.run({
        id,
        username: after.username,
        username_key: foldKey(after.username),
        email: after.email,
        email_key: foldKey(after.email),
        status: after.status,
        tags: JSON.stringify(after.tags),
        metadata: JSON.stringify(after.metadata),
        now,
      });
      const activities = change.activities.map((a) =>
        this.insertActivity(id, a.action, a.details, now),
      );
      const status: StatusEvent | undefined = change.statusChanged
        ? { userId: id, status: after.status, at: new Date(now), origin }
        : undefined;
      return { user: this.mustGetUser(id), activities, status };
    });
    for (const activity of outcome.activities) this.events.publishActivity(activity);
    if (outcome.status !== undefined) this.events.publishStatus(outcome.status);
    return outcome.user;
  }

  private insertActivity(
    userId: bigint,
    action: string,
    details: Record<string, string>,
    now: number,
  ): ActivityRecord {
    const result = this.sql.insertActivity.run(userId, action, JSON.stringify(details), now);
    return {
      id: BigInt(result.lastInsertRowid),
      userId,
      action,
      details,
      createdAt: new Date(now),
    };
  }

  private listActivities(userId: bigint, query: ListActivitiesQuery): ActivityRecord[] {
    const rows = this.sql.listActivities.all(
      userId,
      query.afterId ?? 0n,
      query.since?.getTime() ?? 0,
      query.limit,
    );
    return (rows as unknown as ArrayRow[]).map(toActivity);
  }

  private insertRefreshToken(token: RefreshTokenRecord, now: number): void {
    this.sql.insertRefreshToken.run(
      token.jti,
      token.familyId,
      token.userId,
      token.expiresAt.getTime(),
      now,
    );
  }

  private rotateRefreshToken(jti: string, next: RefreshTokenRecord, now: Date): RotateOutcome {
    return this.transaction((): RotateOutcome => {
      const row = this.sql.getRefreshToken.get(jti);
      if (row === undefined) return { kind: "invalid" };
      const userId = BigInt(row.user_id as number | bigint);
      if (row.revoked_at !== null) {
        this.sql.revokeFamily.run(now.getTime(), row.family_id as string);
        return { kind: "reused", userId };
      }
      if (Number(row.expires_at) <= now.getTime()) return { kind: "invalid" };
      this.sql.revokeToken.run(now.getTime(), next.jti, jti);
      this.insertRefreshToken(next, now.getTime());
      return { kind: "rotated", userId };
    });
  }
}

function prepareStatements(db: DatabaseSync) {
  const statements = {
    ping: db.prepare("SELECT 1"),
    insertUser: db.prepare(`
      INSERT INTO users (username, username_key, email, email_key, status, tags, metadata,
                         password_hash, created_at, updated_at)
      VALUES ($username, $username_key, $email, $email_key, $status, $tags, $metadata,
              $password_hash, $now, $now)`),
    getUser: db.prepare(`SELECT ${userColumns.list} FROM users WHERE id = ?`),
    findCredentials: db.prepare(
      `SELECT ${userColumns.list}, password_hash FROM users WHERE username_key = ?`,
    ),
    findTaken: db.prepare(
      `SELECT username_key = ?1 AS username FROM users WHERE username_key = ?1 OR email_key = ?2
       ORDER BY username_key = ?1 DESC LIMIT 1`,
    ),
    listUsers: db.prepare(`SELECT ${userColumns.list} FROM users WHERE id > ? ORDER BY id LIMIT ?`),
    listUsersByStatus: db.prepare(
      `SELECT ${userColumns.list} FROM users WHERE status = ? AND id > ? ORDER BY id LIMIT ?`,
    ),
    updateUser: db.prepare(`
      UPDATE users SET username = $username, username_key = $username_key, email = $email,
                       email_key = $email_key, status = $status, tags = $tags,
                       metadata = $metadata, updated_at = $now
      WHERE id = $id`),
    setRoles: db.prepare("UPDATE users SET roles = ?, updated_at = ? WHERE id = ?"),
    insertActivity: db.prepare(
      "INSERT INTO activities (user_id, action, details, created_at) VALUES (?, ?, ?, ?)",
    ),
    listActivities: db.prepare(`
      SELECT ${activityColumns.list} FROM activities
      WHERE user_id = ? AND id > ? AND created_at >= ?
      ORDER BY id LIMIT ?`),
    insertRefreshToken: db.prepare(`
      INSERT INTO refresh_tokens (jti, family_id, user_id, expires_at, created_at)
      VALUES (?, ?, ?, ?, ?)`),
    getRefreshToken: db.prepare("SELECT * FROM refresh_tokens WHERE jti = ?"),
    revokeToken: db.prepare(
      "UPDATE refresh_tokens SET revoked_at = ?, replaced_by = ? WHERE jti = ? AND revoked_at IS NULL",
    ),
    revokeFamily: db.prepare(
      "UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL",
    ),
    familyActive: db.prepare(
      "SELECT 1 FROM refresh_tokens WHERE family_id = ? AND revoked_at IS NULL AND expires_at > ? LIMIT 1",
    ),
  } satisfies Record<string, StatementSync>;
  // Ids are int64 in the API: read every integer as a bigint, never a rounded number.
  for (const statement of Object.values(statements)) statement.setReadBigInts(true);
  // The hot reads return arrays: an object per row costs its column names as keys every time.
  for (const statement of [
    statements.getUser,
    statements.findCredentials,
    statements.listUsers,
    statements.listUsersByStatus,
    statements.listActivities,
  ]) {
    statement.setReturnArrays(true);
  }
  return statements;
}

/** A row of a statement that returns arrays: its values in the order of its columns. */
type ArrayRow = readonly SQLOutputValue[];

/** Columns to select, in this order, and where each one is in the rows. */
function columns<const Name extends string>(...names: Name[]) {
  return {
    list: names.join(", "),
    at: Object.fromEntries(names.map((name, i) => [name, i])) as Record<Name, number>,
    count: names.length,
  };
}

// What `toUser` reads: the password hash stays in the database unless a login asks for it (it
// follows these columns then).
const userColumns = columns(
  "id",
  "username",
  "email",
  "status",
  "tags",
  "metadata",
  "roles",
  "created_at",
  "updated_at",
);
const user = userColumns.at;

function toUser(row: ArrayRow): UserRecord {
  return {
    id: row[user.id] as bigint,
    username: row[user.username] as string,
    email: row[user.email] as string,
    status: Number(row[user.status]) as UserStatus,
    tags: JSON.parse(row[user.tags] as string) as string[],
    metadata: JSON.parse(row[user.metadata] as string) as Record<string, string>,
    roles: JSON.parse(row[user.roles] as string) as string[],
    createdAt: new Date(Number(row[user.created_at])),
    updatedAt: new Date(Number(row[user.updated_at])),
  };
}

const activityColumns = columns("id", "user_id", "action", "details", "created_at");
const activity = activityColumns.at;

function toActivity(row: ArrayRow): ActivityRecord {
  return {
    id: row[activity.id] as bigint,
    userId: row[activity.user_id] as bigint,
    action: row[activity.action] as string,
    details: JSON.parse(row[activity.details] as string) as Record<string, string>,
    createdAt: new Date(Number(row[activity.created_at])),
  };
}

const uniqueColumns: Record<string, string> = {
  "users.username_key": "username",
  "users.email_key": "email",
  "orders.user_id, orders.idempotency_key": "idempotency_key",
  "api_keys.id": "key_id",
};

/** Maps SQLite failures to StoreErrors; anything else is passed on unchanged. */
function translate(err: unknown): unknown {
  if (err instanceof StoreError || !(err instanceof Error)) return err;
  const code = (err as { errcode?: number }).errcode;
  if (code === undefined) return err;
  // Extended result codes: SQLITE_CONSTRAINT_UNIQUE (2067), SQLITE_CONSTRAINT_PRIMARYKEY (1555).
  if (code === 2067 || code === 1555) {
    const column = /constraint failed: ([\w., ]+)/.exec(err.message)?.[1] ?? "";
    const field = uniqueColumns[column];
    return new StoreError("already_exists", `${field ?? column} is already taken`, {
      cause: err,
      ...(field === undefined ? {} : { field }),
    });
  }
  // The primary result code is the low byte: BUSY, LOCKED, IOERR, FULL, CANTOPEN, READONLY.
  if ([5, 6, 10, 13, 14, 8].includes(code & 0xff)) {
    return new StoreError("unavailable", `the database is unavailable: ${err.message}`, {
      cause: err,
    });
  }
  return err;
}
