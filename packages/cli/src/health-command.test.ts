import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { runCli } from "./testing/run-cli.ts";
import { type ServerProcess, startServerProcess } from "./testing/server-process.ts";

/** A TCP port that accepts connections and never answers: a hung server. */
async function silentPort(): Promise<{ port: number; server: Server }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
  });
  server.on("close", () => {
    for (const socket of sockets) socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as { port: number }).port, server };
}

/** A port nothing listens on: one that was free a moment ago. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("keel health", () => {
  let server: ServerProcess;
  let silent: { port: number; server: Server };
  before(async () => {
    [server, silent] = await Promise.all([startServerProcess(), silentPort()]);
  });
  after(() => silent.server.close());

  it("exits 0 and prints SERVING for the server and for each service, in every protocol", async () => {
    const results = await Promise.all([
      runCli(["health", "--url", server.url]),
      runCli(["health", "--url", server.url, "--service", "user.v1.UserService"]),
      runCli(["health", "--url", server.url, "--service", "order.v1.OrderService"]),
      runCli(["health", "--url", server.url, "--protocol", "grpc-web"]),
      runCli(["health", "--url", server.url, "--protocol", "connect", "--timeout", "2s"]),
    ]);
    for (const result of results) {
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, "SERVING\n");
    }
  });

  it("exits 1 for a service the server does not know", async () => {
    const result = await runCli(["health", "--url", server.url, "--service", "nope.v1.Nothing"]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /cannot check nope\.v1\.Nothing .*\[not_found\]/);
  });

  it("exits 1 when nothing listens", async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const result = await runCli(["health", "--url", url]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /\[unavailable\].*ECONNREFUSED/);
  });

  it("exits 1 once --timeout passes without an answer", async () => {
    const started = performance.now();
    const result = await runCli([
      "health",
      "--url",
      `http://127.0.0.1:${silent.port}`,
      "--timeout",
      "300ms",
    ]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /\[deadline_exceeded\]/);
    // The process start is most of it; without the deadline it would wait for ever.
    assert.ok(performance.now() - started < 10_000);
  });
});
