import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { UserStatus } from "@keel/gen/user/v1/user_pb";
import { storeContract } from "../testing/store-contract.ts";
import { openSqliteStore } from "./sqlite-store.ts";

const dir = mkdtempSync(join(tmpdir(), "keel-sqlite-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const modeOf = (file: string) => statSync(file).mode & 0o777;

storeContract("sqlite", async (options) =>
  openSqliteStore({ path: join(dir, `db${++files}.sqlite`), ...options }),
);

describe("sqlite store", () => {
  it("keeps what it stored across a reopen of the same file", async () => {
    const path = join(dir, "nested", "durable.sqlite");
    const first = openSqliteStore({ path });
    const user = await first.users.create({
      username: "durable",
      email: "durable@example.com",
      status: UserStatus.ACTIVE,
      tags: [],
      passwordHash: "h",
    });
    await first.close();
    const second = openSqliteStore({ path });
    assert.deepEqual(await second.users.get(user.id), user);
    await second.close();
  });

  it("shares live events with another process's store through a relay", async () => {
    const path = join(dir, "relayed.sqlite");
    // Two ends of a channel, as cluster workers have through their primary.
    const listeners: ((payload: string) => void)[] = [];
    const relay = (me: number) => ({
      send: (payload: string) => listeners[1 - me]?.(payload),
      onReceive: (listener: (payload: string) => void) => {
        listeners[me] = listener;
      },
    });
    const a = openSqliteStore({ path, relay: relay(0) });
    const b = openSqliteStore({ path, relay: relay(1) });
    const user = await a.users.create({
      username: "relayed",
      email: "relayed@example.com",
      status: UserStatus.ACTIVE,
      tags: [],
      passwordHash: "h",
    });
    const follower = b.events.statuses({ origin: "b" });
    follower.follow(user.id);
    await a.users.update(user.id, { status: UserStatus.SUSPENDED }, "a");
    assert.equal((await follower.next()).value?.status, UserStatus.SUSPENDED);
    await a.close();
    await b.close();
  });

  it("creates the database and its -wal and -shm files readable by their owner only", async () => {
    const path = join(dir, "private", "keel.db");
    const warnings: string[] = [];
    const store = openSqliteStore({ path, onWarning: (m) => warnings.push(m) });
    await store.users.create({
      username: "private",
      email: "private@example.com",
      status: UserStatus.ACTIVE,
      tags: [],
      passwordHash: "h",
    });
    for (const file of [path, `${path}-wal`, `${path}-shm`]) {
      assert.ok(existsSync(file), file);
      assert.equal(modeOf(file), 0o600, file);
    }
    assert.deepEqual(warnings, []);
    await store.close();
  });

  it("restricts an existing database and its companions found readable by others, and says so", async () => {
    const path = join(dir, "loose.db");
    const first = openSqliteStore({ path });
    await first.users.list({ limit: 1 });
    const files = [path, `${path}-wal`, `${path}-shm`];
    for (const file of files) chmodSync(file, 0o644);
    const warnings: string[] = [];
    const second = openSqliteStore({ path, onWarning: (m) => warnings.push(m) });
    for (const file of files) assert.equal(modeOf(file), 0o600, file);
    assert.equal(warnings.length, 3);
    for (const [i, file] of files.entries()) {
      assert.equal(
        warnings[i],
        `${file} was readable beyond its owner (mode 0644); changed to 0600`,
      );
    }
    assert.equal((await second.users.list({ limit: 1 })).length, 0);
    await first.close();
    await second.close();
  });

  it("migrates a file once when two processes' stores open it together", async () => {
    const path = join(dir, "shared.sqlite");
    const a = openSqliteStore({ path });
    const b = openSqliteStore({ path });
    await a.users.create({
      username: "shared",
      email: "shared@example.com",
      status: UserStatus.ACTIVE,
      tags: [],
      passwordHash: "h",
    });
    assert.equal((await b.users.list({ limit: 10 })).length, 1);
    await a.close();
    await b.close();
  });
});
