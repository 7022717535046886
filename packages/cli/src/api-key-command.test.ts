import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createUserClient } from "@keel/clients";
import { runCli } from "./testing/run-cli.ts";
import { type ServerProcess, startServerProcess } from "./testing/server-process.ts";

describe("keel api-key", () => {
  let server: ServerProcess;
  let admin: string[];
  before(async () => {
    server = await startServerProcess();
    const token = await runCli(["token", "--user-id", "1", "--roles", "admin"], server.env);
    assert.equal(token.code, 0, token.stderr);
    admin = ["--url", server.url, "--token", token.stdout.trim()];
  });

  it("creates a key shown once, lists it without the key, and revokes it", async () => {
    const created = await runCli([
      "api-key",
      "create",
      "--name",
      "nightly export",
      "--roles",
      "admin",
      "--expires-in",
      "90d",
      ...admin,
    ]);
    assert.equal(created.code, 0, created.stderr);
    const key = created.stdout.trim();
    const id = /^keel_([0-9a-f]{16})_[\w-]{43}$/.exec(key)?.[1];
    assert.ok(id, created.stdout);
    assert.match(
      created.stderr,
      new RegExp(
        `^created API key ${id} \\("nightly export", roles admin, expires \\d{4}-\\d\\d-\\d\\dT[\\d:]+Z\\)\\nThe key above is shown this once`,
      ),
    );
    const machine = createUserClient({
      baseUrl: server.url,
      interceptors: [
        (next) => (req) => {
          req.header.set("x-api-key", key);
          return next(req);
        },
      ],
    });
    assert.ok((await machine.listUsers({})).users !== undefined);

    const listed = await runCli(["api-key", "list", ...admin]);
    assert.equal(listed.code, 0, listed.stderr);
    const [header, row] = listed.stdout.split("\n");
    assert.match(header ?? "", /^ID +NAME +ROLES +CREATED +EXPIRES +LAST USED +REVOKED$/);
    assert.match(
      row ?? "",
      new RegExp(`^${id}  nightly export  admin  \\S+Z  \\S+Z  (-|\\S+Z) +-$`),
    );
    assert.ok(!listed.stdout.includes(key.slice(22)), "the list never shows a key");

    const revoked = await runCli(["api-key", "revoke", "--id", id, ...admin]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, new RegExp(`^revoked API key ${id} `));
    await assert.rejects(
      machine.listUsers({}),
      (err) => ConnectError.from(err).code === Code.Unauthenticated,
    );
    const again = await runCli(["api-key", "list", ...admin]);
    assert.match(again.stdout.split("\n")[1] ?? "", /\d{4}-\d\d-\d\dT[\d:]+Z$/);
  });

  it("exits 1 with the server's reason, and 2 on a command line mistake", async () => {
    const unknown = await runCli(["api-key", "revoke", "--id", "0123456789abcdef", ...admin]);
    assert.equal(unknown.code, 1);
    assert.equal(
      unknown.stderr,
      'keel api-key: [not_found] no API key with id "0123456789abcdef"\n',
    );
    const noToken = await runCli(["api-key", "list", "--url", server.url]);
    assert.equal(noToken.code, 1);
    assert.match(noToken.stderr, /^keel api-key: \[unauthenticated\] /);
    for (const [args, message] of [
      [["api-key"], "say what to do: create, list, revoke"],
      [["api-key", "rotate"], 'say what to do: create, list, revoke, not "rotate"'],
      [["api-key", "create", "--url", server.url], "--name is required"],
      [["api-key", "list", "--id", "x", "--url", server.url], "--id does not go with list"],
      [["api-key", "create", "--name", "n", "--expires-in", "soon"], "--expires-in must be"],
    ] as const) {
      const result = await runCli([...args]);
      assert.equal(result.code, 2, result.stderr);
      assert.ok(result.stderr.startsWith(`keel: api-key: ${message}`), result.stderr);
    }
  });
});
