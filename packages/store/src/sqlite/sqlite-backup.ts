import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { dirname } from "node:path";
import { backup, DatabaseSync } from "node:sqlite";
import { StoreError } from "../store-error.ts";
import { restrictDatabaseFiles } from "./database-file-modes.ts";
import { latestSchemaVersion } from "./migrations.ts";

/** What a backup or a restore copied. */
export interface SqliteCopyResult {
  /** Database pages copied. */
  pages: number;
  /** Size of the file written, in bytes. */
  bytes: number;
  /** The schema version of the copy (its highest applied migration). */
  schemaVersion: number;
}

// sqlite3_backup_step copies this many pages at a time. A write by another connection between two
// steps restarts the copy, so a server that keeps writing could keep a paged backup from ever
// finishing; one step holds one read transaction (WAL readers never block the writer) and copies
// the database as of its start.
const allPages = 0x7fff_ffff;

/**
 * Copies the SQLite database at `from` to a new file `to` while other processes (the server) go
 * on reading and writing it: SQLite's online backup in one step, so the copy holds every
 * transaction committed before it began and none half-done. The copy is written beside `to`
 * first, checked (`quick_check`, keel's schema), made a single self-contained file (rollback
 * journal, no -wal), readable by its owner only, and only then renamed to `to`: a failed or
 * interrupted backup never leaves a file that looks complete. Refuses to overwrite `to`.
 */
export async function backupSqlite(from: string, to: string): Promise<SqliteCopyResult> {
  if (existsSync(to))
    throw new StoreError("invalid_argument", `${to} exists already; name a new file`);
  const source = openKeelDatabase(from, "the database");
  const partial = `${to}.partial`;
  try {
    rmSync(partial, { force: true });
    // Created 0600 before SQLite writes password hashes into it.
    closeSync(openSync(partial, "wx", 0o600));
    const pages = await backup(source, partial, { rate: allPages });
    const schemaVersion = finishCopy(partial);
    renameSync(partial, to);
    return { pages, bytes: statSync(to).size, schemaVersion };
  } catch (err) {
    rmSync(partial, { force: true });
    throw err;
  } finally {
    source.close();
  }
}

/**
 * Replaces the database at `to` with the backup at `from`, with the server stopped: refused
 * while any process has `to` open (SQLite cannot leave WAL mode then), and refused when `from`
 * is not a sound keel database of a schema this build knows. The server migrates the restored
 * database at its next start.
 */
export async function restoreSqlite(from: string, to: string): Promise<SqliteCopyResult> {
  const source = openKeelDatabase(from, "the backup");
  try {
    const schemaVersion = checkCopy(source, from);
    if (existsSync(to)) refuseIfInUse(to);
    else {
      mkdirSync(dirname(to), { recursive: true });
      restrictDatabaseFiles(to);
    }
    // SQLite writes the pages in one transaction: an interrupted restore leaves the old database.
    const pages = await backup(source, to, { rate: allPages });
    // The restored file carries the backup's header (rollback journal); the server turns WAL on.
    return { pages, bytes: statSync(to).size, schemaVersion };
  } finally {
    source.close();
  }
}

/** Opens an existing database file (never creating one) that holds keel's schema table. */
function openKeelDatabase(path: string, what: string): DatabaseSync {
  if (!existsSync(path)) throw new StoreError("not_found", `${what} ${path} does not exist`);
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path, { timeout: 5000 });
    db.prepare("SELECT count(*) FROM sqlite_schema").get();
  } catch (err) {
    throw new StoreError("invalid_argument", `${what} ${path} is not an SQLite database`, {
      cause: err,
    });
  }
  const keel = db
    .prepare(
      "SELECT 1 AS found FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'",
    )
    .get();
  if (keel === undefined) {
    db.close();
    throw new StoreError(
      "invalid_argument",
      `${what} ${path} is not a keel database (no schema_migrations table)`,
    );
  }
  return db;
}

/** Checks a finished copy and makes it one file; returns its schema version. */
function finishCopy(path: string): number {
  const db = new DatabaseSync(path, { timeout: 5000 });
  try {
    const version = checkCopy(db, path);
    db.exec("PRAGMA journal_mode = DELETE");
    return version;
  } finally {
    db.close();
    chmodSync(path, 0o600);
  }
}

/** The copy passes SQLite's quick check and has a schema this build can run. */
function checkCopy(db: DatabaseSync, path: string): number {
  let check: { quick_check: string }[];
  try {
    check = db.prepare("PRAGMA quick_check").all() as { quick_check: string }[];
  } catch (err) {
    // Damage bad enough stops the check itself.
    throw new StoreError("invalid_argument", `${path} is damaged: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (check.length !== 1 || check[0]?.quick_check !== "ok") {
    throw new StoreError(
      "invalid_argument",
      `${path} is damaged: ${check
        .slice(0, 5)
        .map((row) => row.quick_check)
        .join("; ")}`,
    );
  }
  const row = db.prepare("SELECT MAX(version) AS version FROM schema_migrations").get();
  const version = Number(row?.version ?? 0);
  if (version > latestSchemaVersion) {
    throw new StoreError(
      "invalid_argument",
      `${path} has schema version ${version}, newer than this build knows (${latestSchemaVersion}); use a newer build`,
    );
  }
  return version;
}

/**
 * A process with the database open in WAL mode (the server) holds a shared lock on it for as long
 * as it is open, and leaving WAL mode needs the only connection: so this fails exactly while one
 * is open, whether or not it is writing at the moment.
 */
function refuseIfInUse(path: string): void {
  const db = new DatabaseSync(path, { timeout: 0 });
  try {
    db.exec("PRAGMA journal_mode = DELETE");
  } catch (err) {
    throw new StoreError(
      "unavailable",
      `${path} is in use by another process; stop the server (every worker) before restoring`,
      { cause: err },
    );
  } finally {
    db.close();
  }
}
