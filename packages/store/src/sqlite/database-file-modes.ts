import { chmodSync, closeSync, openSync, statSync } from "node:fs";

/** The files SQLite keeps beside a database: each holds the same data, password hashes included. */
const companions = ["", "-wal", "-shm", "-journal"];

/**
 * Makes the database at `path` readable by its owner only, as the JWT secret and the audit log
 * are: a missing file is created 0600 (SQLite then gives its -wal and -shm files the database's
 * mode), and an existing file, or one of its companions, open to group or others is tightened to
 * its owner's bits. Returns what it tightened, for the log.
 */
export function restrictDatabaseFiles(path: string): string[] {
  try {
    closeSync(openSync(path, "wx", 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  const tightened: string[] = [];
  for (const suffix of companions) {
    const file = path + suffix;
    let mode: number;
    try {
      mode = statSync(file).mode & 0o777;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw err;
    }
    if ((mode & 0o077) === 0) continue;
    chmodSync(file, mode & 0o700);
    tightened.push(
      `${file} was readable beyond its owner (mode ${octal(mode)}); changed to ${octal(mode & 0o700)}`,
    );
  }
  return tightened;
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, "0")}`;
}
