import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createOrderClient, createUserClient, type OrderClient } from "@keel/clients";
import { backupCommand, restoreCommand, tokenCommand, UsageError } from "./commands.ts";
import { loadConfig } from "./config.ts";
import { runServer, servingUrl } from "./testing/process.ts";

const dataDir = mkdtempSync(join(tmpdir(), "keel-backup-"));
after(() => rmSync(dataDir, { recursive: true, force: true }));

const env = {
  KEEL_DATA_DIR: dataDir,
  KEEL_PASSWORD_COST: "10",
  KEEL_RATE_LIMIT_RPS: "100000",
  KEEL_RATE_LIMIT_BURST: "100000",
};

/** Every order id of user 1, page by page. */
async function orderIds(orders: OrderClient): Promise<Set<bigint>> {
  const ids = new Set<bigint>();
  let pageToken = "";
  do {
    const page = await orders.listOrders({ userId: 1n, pageSize: 1000, pageToken });
    for (const order of page.orders) ids.add(order.orderId);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return ids;
}

describe("backup and restore of the SQLite database", () => {
  it("backs up while writes go on; restore refuses a running server, then brings back every write acknowledged before the backup", async () => {
    const server = runServer(env);
    const url = await servingUrl(server);
    await createUserClient({ baseUrl: url }).createUser({
      username: "owner",
      email: "owner@example.com",
      password: "long enough password",
    });
    const token = await tokenCommand(loadConfig(env), ["--user-id", "1", "--roles", "admin"]);
    const orders = createOrderClient({ baseUrl: url, token });

    // Four writers create orders until told to stop; `acked` holds each order once its call
    // returned, in that order.
    const acked: bigint[] = [];
    let writing = true;
    let n = 0;
    const writer = async () => {
      while (writing) {
        const { order } = await orders.createOrder({
          userId: 1n,
          idempotencyKey: `order-${n++}`,
          items: [
            {
              sku: "S",
              name: "Sock",
              quantity: 1,
              unitPrice: { currencyCode: "EUR", amountMinor: 100n },
            },
          ],
        });
        acked.push(order?.orderId ?? 0n);
      }
    };
    const writers = Promise.all([writer(), writer(), writer(), writer()]);
    while (acked.length < 40) await new Promise((resolve) => setTimeout(resolve, 10));

    const file = join(dataDir, "backup.db");
    const before = acked.length;
    const backup = await runServer(env, ["backup", "--out", file]).exited;
    const afterBackup = acked.length;
    assert.equal(backup.code, 0, backup.stderr);
    assert.match(
      backup.stdout,
      /^backed up .*keel\.db to .*backup\.db: \d+ pages, \d+ bytes, schema version \d+\n$/,
    );
    // Writes were acknowledged while the backup ran: it did not stop the server's writes.
    assert.ok(afterBackup > before, `${afterBackup - before} writes during the backup`);
    // One file, owner-only: it holds password hashes.
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(existsSync(`${file}-wal`), false);
    assert.equal(existsSync(`${file}.partial`), false);
    // A second backup to the same file is refused rather than overwriting it.
    await assert.rejects(
      backupCommand(loadConfig(env), ["--out", file]),
      /backup\.db exists already; name a new file/,
    );

    // Writes after the backup exist on the live server: a real restore must remove them.
    while (acked.length < afterBackup + 20) await new Promise((resolve) => setTimeout(resolve, 10));
    writing = false;
    await writers;
    const refused = await runServer(env, ["restore", "--from", file]).exited;
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /is in use by another process; stop the server/);

    process.kill(server.child.pid as number, "SIGTERM");
    assert.equal((await server.exited).code, 0);
    const restored = await runServer(env, ["restore", "--from", file]).exited;
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stdout, /^restored .*backup\.db to .*keel\.db: \d+ pages/);

    const second = runServer(env);
    const ids = await orderIds(createOrderClient({ baseUrl: await servingUrl(second), token }));
    const missing = acked.slice(0, before).filter((id) => !ids.has(id));
    assert.deepEqual(missing, [], "every write acknowledged before the backup began is restored");
    const last = acked.at(-1) as bigint;
    assert.equal(ids.has(last), false, "a write made after the backup is gone after the restore");
    // The restored database takes writes again.
    process.kill(second.child.pid as number, "SIGTERM");
    assert.equal((await second.exited).code, 0);
  });

  it("refuses what it cannot do with a message that says what to do", async () => {
    const config = loadConfig(env);
    await assert.rejects(
      restoreCommand(config, ["--from", join(dataDir, "nothing.db")]),
      /the backup .*nothing\.db does not exist/,
    );
    await assert.rejects(
      restoreCommand(config, ["--from", join(dataDir, "jwt-secret")]),
      /jwt-secret is not an SQLite database/,
    );
    await assert.rejects(backupCommand(config, []), new UsageError("backup needs --out FILE"));
    // A restore into a place with no database yet (a new machine) creates it, owner-only.
    const fresh = join(dataDir, "elsewhere", "keel.db");
    const restored = await restoreCommand(loadConfig({ ...env, KEEL_SQLITE_PATH: fresh }), [
      "--from",
      join(dataDir, "backup.db"),
    ]);
    assert.match(restored, /^restored .*backup\.db to .*elsewhere\/keel\.db: \d+ pages/);
    assert.equal(statSync(fresh).mode & 0o777, 0o600);
    await assert.rejects(
      backupCommand(loadConfig({ ...env, KEEL_DATABASE_URL: "postgres://127.0.0.1/test" }), [
        "--out",
        join(dataDir, "pg.db"),
      ]),
      /use pg_dump and pg_restore/,
    );
  });
});
