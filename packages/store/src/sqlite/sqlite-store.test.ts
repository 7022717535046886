import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { UserStatus } from "@keel/gen/user/v1/user_pb";
import { storeContract } from "../testing/store-contract.ts";
import { openSqliteStore } from "./sqlite-store.ts";

const dir = mkdtempSync(join(tmpdir(), "keel-sqlite-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

storeContract("sqlite", async () => openSqliteStore({ path: join(dir, `db${++files}.sqlite`) }));

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
