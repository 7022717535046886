import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runCli } from "./testing/run-cli.ts";

const commands = [
  "server",
  "client",
  "stream",
  "perf",
  "token",
  "health",
  "list",
  "describe",
  "seed",
];

describe("keel", () => {
  it("lists the commands with --help, and says what to do when run bare", async () => {
    const [help, bare] = await Promise.all([runCli(["--help"]), runCli([])]);
    assert.equal(help.code, 0);
    for (const command of commands) assert.match(help.stdout, new RegExp(`^  ${command} `, "m"));
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /^usage: keel <command>/);
  });

  it("rejects an unknown command with exit code 2", async () => {
    const result = await runCli(["deploy"]);
    assert.equal(result.code, 2);
    assert.equal(result.stderr, 'keel: unknown command "deploy"\nRun keel --help for usage.\n');
  });

  for (const command of commands) {
    describe(command, () => {
      it("prints its usage with --help and -h", async () => {
        const [long, short, viaHelp] = await Promise.all([
          runCli([command, "--help"]),
          runCli([command, "-h"]),
          runCli(["help", command]),
        ]);
        assert.equal(long.code, 0, long.stderr);
        assert.match(long.stdout, new RegExp(`^usage: keel ${command}\\b`));
        assert.equal(short.stdout, long.stdout);
        assert.equal(viaHelp.stdout, long.stdout);
        assert.equal(long.stderr, "");
      });

      it("rejects a bad flag with exit code 2 and a message naming it", async () => {
        const result = await runCli([command, "--no-such-flag"]);
        assert.equal(result.code, 2);
        assert.equal(
          result.stderr,
          `keel: ${command}: unknown flag --no-such-flag\nRun keel ${command} --help for usage.\n`,
        );
        assert.equal(result.stdout, "");
      });
    });
  }

  it("rejects bad flag values with exit code 2", async () => {
    const results = await Promise.all([
      runCli(["health", "--protocol", "http3"]),
      runCli(["health", "--url", "ftp://example.com"]),
      runCli(["health", "--timeout", "soon"]),
      runCli(["perf", "--requests", "10", "--duration", "1s"]),
      runCli(["perf", "--concurrency", "2", "--connections", "4"]),
      runCli(["perf", "--method", "DeleteEverything"]),
      runCli(["perf", "--connections", "2", "--threads", "3"]),
      runCli(["stream", "positional"]),
      runCli(["token"]),
    ]);
    const messages = [
      /--protocol must be one of grpc, grpc-web, connect, not "http3"/,
      /--url must be an http:\/\/ or https:\/\/ URL/,
      /--timeout must be a positive duration such as 500ms, 5s or 2m, not "soon"/,
      /give --requests or --duration, not both/,
      /--connections \(4\) must not exceed --concurrency \(2\)/,
      /--method must be one of GetUser, ListUsers, CreateUser, TrackOrder/,
      /--threads \(3\) must not exceed --connections \(2\)/,
      /unexpected argument "positional"/,
      /^keel: token: --user-id is required\n/,
    ];
    for (const [i, result] of results.entries()) {
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, messages[i] as RegExp);
    }
  });
});
