import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, describe, it } from "node:test";
import { UserStatus } from "@keel/gen/user/v1/user_pb";
import { backupSqlite, restoreSqlite } from "./sqlite-backup.ts";
import { openSqliteStore } from "./sqlite-store.ts";

const dir = mkdtempSync(join(tmpdir(), "keel-sqlite-backup-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A keel database with `users` users in it, closed. */
async function database(name: string, users: number): Promise<string> {
  const path = join(dir, name);
  const store = openSqliteStore({ path });
  for (let i = 0; i < users; i++) {
    await store.users.create({
      username: `user${i}`,
      email: `user${i}@example.com`,
      status: UserStatus.ACTIVE,
      tags: [],
      passwordHash: "h".repeat(200),
    });
  }
  await store.close();
  return path;
}

describe("SQLite backup and restore", () => {
  it("copies a database another connection has open, and restores it over a changed one", async () => {
    const live = await database("live.db", 50);
    const server = openSqliteStore({ path: live });
    const copy = join(dir, "copy.db");
    const result = await backupSqlite(live, copy);
    assert.ok(result.pages > 1 && result.bytes === result.pages * 4096, JSON.stringify(result));
    await server.users.create({
      username: "later",
      email: "later@example.com",
      status: UserStatus.ACTIVE,
      tags: [],
      passwordHash: "h",
    });
    await assert.rejects(restoreSqlite(copy, live), /live\.db is in use by another process/);
    await server.close();
    await restoreSqlite(copy, live);
    const restored = openSqliteStore({ path: live });
    assert.equal((await restored.users.list({ limit: 1000 })).length, 50);
    assert.equal(await restored.users.findCredentials("later"), undefined);
    await restored.close();
  });

  it("refuses a damaged backup, one of a newer schema, and a file that is not keel's", async () => {
    const good = await backupSqlite(await database("source.db", 200), join(dir, "good.db"));
    assert.ok(good.pages > 10);
    const target = await database("target.db", 1);

    const damaged = join(dir, "damaged.db");
    copyFileSync(join(dir, "good.db"), damaged);
    const fd = openSync(damaged, "r+");
    // Garbage over the pages after the schema: the header still says SQLite.
    writeSync(fd, Buffer.alloc(4096 * 4, 0x5a), 0, 4096 * 4, 4096 * 3);
    await assert.rejects(restoreSqlite(damaged, target), /damaged\.db is damaged: /);

    const newer = join(dir, "newer.db");
    copyFileSync(join(dir, "good.db"), newer);
    const db = new DatabaseSync(newer);
    db.exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)");
    db.close();
    await assert.rejects(restoreSqlite(newer, target), /schema version 999, newer than this build/);

    const other = join(dir, "other.db");
    new DatabaseSync(other).exec("CREATE TABLE notes (text TEXT)");
    await assert.rejects(restoreSqlite(other, target), /not a keel database/);
    // The target was left as it was.
    const store = openSqliteStore({ path: target });
    assert.equal((await store.users.list({ limit: 10 })).length, 1);
    await store.close();
  });
});
