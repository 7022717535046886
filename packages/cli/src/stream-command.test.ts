import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { runCli } from "./testing/run-cli.ts";
import { type ServerProcess, startServerProcess } from "./testing/server-process.ts";

describe("keel stream", () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServerProcess();
  });

  it("shows server, client and bidi streaming, with what arrives printed as it arrives", async () => {
    const result = await runCli(["stream", "--url", server.url, "--interval", "100ms"], server.env);
    assert.equal(result.code, 0, result.stderr);
    // `[  1.234s] kind          text`
    const lines = result.stdout
      .trimEnd()
      .split("\n")
      .map((line) => {
        const match = /^\[ *([\d.]+)s\] (\S+) +(.*)$/.exec(line);
        assert.ok(match, `unexpected line ${JSON.stringify(line)}`);
        return { at: Number(match[1]), kind: match[2], text: match[3] as string };
      });
    const index = (kind: string, text: RegExp) => {
      const i = lines.findIndex((line) => line.kind === kind && text.test(line.text));
      assert.ok(i >= 0, `no ${kind} line matching ${text}:\n${result.stdout}`);
      return i;
    };

    // Server streaming: history, then each update live, while the client stream is still open.
    index("server-stream", /^← #\d+ user\.created /);
    const firstUpdate = index("server-stream", /^← #\d+ user\.updated fields=tags/);
    assert.ok(firstUpdate < index("client-stream", /^→ update #2:/), "update #1 seen live");
    assert.ok(index("client-stream", /^→ update #1:/) < firstUpdate);
    // Client streaming: three messages, then one answer.
    index("client-stream", /^→ update #3: tags=\[demo,streamed\]/);
    index("client-stream", /^← updated 3, no errors$/);
    // Bidi: the follower gets the current status, then each change the setter sends, live.
    const follows = lines.filter((l) => l.kind === "bidi" && l.text.startsWith("follower ← user"));
    assert.deepEqual(
      follows.map((l) => /is (\w+)/.exec(l.text)?.[1]),
      ["ACTIVE", "INACTIVE", "SUSPENDED", "ACTIVE"],
    );
    assert.ok(
      index("bidi", /^follower ← user \d+ is SUSPENDED/) < index("bidi", /^setter +→ ACTIVE/),
    );
    index("server-stream", /user\.status_changed .*to=USER_STATUS_SUSPENDED/);
    index("bidi", /^follower ← \(stream ended after 4 updates\)$/);
    index("server-stream", /^cancelled by the client after \d+ activities$/);
    // Paced by --interval: the two later updates at least 100 ms apart each.
    const sent = (n: number) =>
      lines[index("client-stream", new RegExp(`^→ update #${n}:`))]?.at ?? 0;
    assert.ok(sent(3) - sent(1) >= 0.19);
  });

  it("exits 1 naming the call that failed", async () => {
    const result = await runCli(["stream", "--url", server.url, "--token", "nonsense"]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^keel stream: StreamUserActivities failed: \[unauthenticated\]/);
  });
});
