import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, describe, it } from "node:test";
import { stripVTControlCharacters } from "node:util";
import { formatBanner, serverUrls } from "./banner.ts";
import { formatLogLine, resolveLogFormat } from "./log-format.ts";
import { createProcessLogger } from "./process-logger.ts";
import { runServer } from "./testing/process.ts";

const dataDir = mkdtempSync(join(tmpdir(), "keel-log-format-"));
after(() => rmSync(dataDir, { recursive: true, force: true }));

/** What a process writes to a stand-in for standard output. */
function capture(isTTY: boolean) {
  const written: string[] = [];
  return { written, stdout: { isTTY, write: (text: string) => written.push(text) } };
}

describe("log format", () => {
  it("auto is readable on a terminal and JSON elsewhere; pretty and json are what they say", () => {
    assert.equal(resolveLogFormat("auto", true), "pretty");
    assert.equal(resolveLogFormat("auto", false), "json");
    for (const isTTY of [true, false]) {
      assert.equal(resolveLogFormat("pretty", isTTY), "pretty");
      assert.equal(resolveLogFormat("json", isTTY), "json");
    }
  });

  it("a terminal gets readable lines, a pipe JSON lines, from the same logger", () => {
    const terminal = capture(true);
    const tty = createProcessLogger({
      level: "info",
      format: "auto",
      base: { service: "keel" },
      stdout: terminal.stdout,
    });
    assert.equal(tty.format, "pretty");
    tty.logger.info({ port: 9090, path: "/var/lib/keel db" }, "serving gRPC, gRPC-Web and Connect");
    assert.equal(terminal.written.length, 1);
    // Coloured on a terminal (unless NO_COLOR is set): strip the escapes to read it.
    const plain = stripVTControlCharacters(terminal.written[0] as string);
    if (!process.env.NO_COLOR) assert.notEqual(plain, terminal.written[0], "coloured");
    assert.match(
      plain,
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}serving gRPC, gRPC-Web and Connect {2}port=9090 path="\/var\/lib\/keel db"\n$/,
    );

    const pipe = capture(false);
    const json = createProcessLogger({
      level: "info",
      format: "auto",
      base: { service: "keel" },
      stdout: pipe.stdout,
    });
    assert.equal(json.format, "json");
    json.logger.warn({ port: 9090 }, "hello");
    const entry = JSON.parse(pipe.written[0] as string) as Record<string, unknown>;
    assert.equal(entry.msg, "hello");
    assert.equal(entry.level, 40);
    assert.equal(entry.service, "keel");
    assert.equal(typeof entry.time, "number");
  });

  it("explicit formats win over the terminal check", () => {
    const terminal = capture(true);
    createProcessLogger({
      level: "info",
      format: "json",
      base: {},
      stdout: terminal.stdout,
    }).logger.info("as JSON");
    assert.equal((JSON.parse(terminal.written[0] as string) as { msg: string }).msg, "as JSON");
    const pipe = capture(false);
    createProcessLogger({
      level: "info",
      format: "pretty",
      base: {},
      stdout: pipe.stdout,
    }).logger.error({ err: new Error("boom") }, "failed");
    // Not a terminal: no colour codes, and the error's stack follows, indented.
    const [first, second] = (pipe.written[0] as string).split("\n");
    assert.match(first ?? "", /^\d\d:\d\d:\d\d\.\d{3} ERROR failed {2}err=boom$/);
    assert.match(second ?? "", /^ {4}Error: boom$/);
    assert.equal(stripVTControlCharacters(pipe.written[0] as string), pipe.written[0]);
  });

  it("leaves a line that is not JSON as it is", () => {
    assert.equal(formatLogLine("plain text", false), "plain text\n");
  });
});

describe("the startup banner", () => {
  it("names the API, console, metrics and health URLs", () => {
    const urls = serverUrls({ apiUrl: "http://127.0.0.1:9090", adminPort: 9091, console: true });
    assert.deepEqual(urls, {
      api: "http://127.0.0.1:9090",
      console: "http://127.0.0.1:9090/console",
      metrics: "http://127.0.0.1:9091/metrics",
      health: "http://127.0.0.1:9091/healthz",
      ready: "http://127.0.0.1:9091/readyz",
    });
    assert.equal(
      formatBanner(urls),
      [
        "",
        "keel is ready",
        "  API      http://127.0.0.1:9090  (gRPC, gRPC-Web, Connect; REST under /api; grpc.health.v1)",
        "  console  http://127.0.0.1:9090/console",
        "  metrics  http://127.0.0.1:9091/metrics",
        "  health   http://127.0.0.1:9091/healthz (live)  http://127.0.0.1:9091/readyz (ready)",
        "  Ctrl-C stops it; ./dev keel --help calls it.",
        "",
        "",
      ].join("\n"),
    );
    const bare = serverUrls({
      apiUrl: "https://10.0.0.5:443",
      adminPort: undefined,
      console: false,
    });
    assert.equal(
      formatBanner(bare),
      "\nkeel is ready\n  API      https://10.0.0.5:443  (gRPC, gRPC-Web, Connect; REST under /api; grpc.health.v1)\n  Ctrl-C stops it; ./dev keel --help calls it.\n\n",
    );
  });

  it("KEEL_LOG_FORMAT=pretty: the server process prints the banner and readable lines", async () => {
    const server = runServer({
      KEEL_DATA_DIR: join(dataDir, "pretty"),
      KEEL_JWT_SECRET: "log-format-test-secret-log-format-test",
      KEEL_LOG_FORMAT: "pretty",
    });
    const lines: string[] = [];
    for await (const line of createInterface({
      input: server.child.stdout as NodeJS.ReadableStream,
    })) {
      lines.push(line);
      if (line.startsWith("  Ctrl-C")) break;
    }
    const text = lines.join("\n");
    // The URLs it names answer.
    const metrics = /^ {2}metrics {2}(\S+)$/m.exec(text)?.[1];
    assert.ok(metrics, text);
    assert.equal((await fetch(metrics)).status, 200);
    process.kill(server.child.pid as number, "SIGTERM");
    assert.equal((await server.exited).code, 0);
    assert.match(
      text,
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}serving gRPC, gRPC-Web and Connect {2}host=127\.0\.0\.1 port=\d+/m,
    );
    assert.ok(!lines.some((line) => line.startsWith("{")), text);
    const api = /^ {2}API {6}(http:\/\/127\.0\.0\.1:\d+) /m.exec(text)?.[1];
    assert.ok(api, text);
    assert.match(text, new RegExp(`^ {2}console {2}${api}/console$`, "m"));
    assert.match(text, /^ {2}health {3}http:\/\/127\.0\.0\.1:\d+\/healthz \(live\)/m);
  });

  it("JSON logs (stdout not a terminal): one ready line with the URLs as fields", async () => {
    const server = runServer({
      KEEL_DATA_DIR: join(dataDir, "json"),
      KEEL_JWT_SECRET: "log-format-test-secret-log-format-test",
    });
    let ready: Record<string, unknown> | undefined;
    let port = 0;
    for await (const line of createInterface({
      input: server.child.stdout as NodeJS.ReadableStream,
    })) {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry.msg === "serving gRPC, gRPC-Web and Connect") port = entry.port as number;
      if (entry.msg === "ready") {
        ready = entry;
        break;
      }
    }
    const response = await fetch(ready?.metrics as string);
    assert.equal(response.status, 200);
    process.kill(server.child.pid as number, "SIGTERM");
    assert.equal((await server.exited).code, 0);
    assert.equal(ready?.api, `http://127.0.0.1:${port}`);
    assert.equal(ready?.console, `http://127.0.0.1:${port}/console`);
    assert.match(String(ready?.health), /^http:\/\/127\.0\.0\.1:\d+\/healthz$/);
    assert.match(String(ready?.ready), /^http:\/\/127\.0\.0\.1:\d+\/readyz$/);
  });
});
