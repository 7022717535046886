import assert from "node:assert/strict";
import { once } from "node:events";
import * as net from "node:net";
import { describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createUserClient } from "@keel/clients";
import { listen } from "./listener.ts";
import { startTestServer } from "./testing/test-server.ts";

describe("shutdown", () => {
  it("ends open streams with UNAVAILABLE and lets calls finish", async () => {
    const server = await startTestServer();
    const client = createUserClient({ baseUrl: server.url, token: server.adminToken });
    const { user } = await client.createUser({
      username: "shutdown",
      email: "shutdown@example.com",
      password: "long enough password",
    });
    const iterator = client
      .streamUserActivities({ userId: user?.userId ?? 0n }, { timeoutMs: 0 })
      [Symbol.asyncIterator]();
    assert.equal((await iterator.next()).value?.action, "user.created");
    const stopped = server.stop();
    await assert.rejects(iterator.next(), (err: unknown) => {
      assert.ok(err instanceof ConnectError);
      assert.equal(err.code, Code.Unavailable);
      assert.match(err.rawMessage, /shutting down/);
      return true;
    });
    await stopped;
    // No longer accepting: a new call fails as unavailable.
    await assert.rejects(client.getUser({ userId: 1n }, { timeoutMs: 2000 }), (err: unknown) => {
      return err instanceof ConnectError && err.code === Code.Unavailable;
    });
  });
});

describe("message size", () => {
  it("refuses a message over 4 MiB with RESOURCE_EXHAUSTED and keeps serving", async () => {
    const server = await startTestServer();
    try {
      const client = createUserClient({ baseUrl: server.url, token: server.adminToken });
      await assert.rejects(
        client.createUser({
          username: "big",
          email: "big@example.com",
          password: "x".repeat(5 * 1024 * 1024),
        }),
        (err: unknown) => err instanceof ConnectError && err.code === Code.ResourceExhausted,
      );
      const { user } = await client.createUser({
        username: "small",
        email: "small@example.com",
        password: "long enough",
      });
      assert.equal(user?.username, "small");
    } finally {
      await server.stop();
    }
  });
});

describe("listener", () => {
  it("closes a connection that sends nothing before the preface timeout", async () => {
    const listener = await listen({
      host: "127.0.0.1",
      port: 0,
      prefaceTimeoutMs: 100,
      handler: (_req, res) => res.end(),
    });
    const socket = net.connect(listener.port, "127.0.0.1");
    const started = Date.now();
    await once(socket, "close");
    assert.ok(Date.now() - started < 5000);
    await listener.close(100);
  });

  it("routes HTTP/1.1 by its first bytes even when they arrive one at a time", async () => {
    const listener = await listen({
      host: "127.0.0.1",
      port: 0,
      handler: (req, res) => {
        res.setHeader("x-version", req.httpVersion);
        res.end("ok");
      },
    });
    const socket = net.connect(listener.port, "127.0.0.1");
    await once(socket, "connect");
    // PROPFIND shares its first two bytes with the HTTP/2 preface.
    const request = "PROPFIND / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let response = "";
    socket.on("data", (chunk) => (response += chunk));
    for (const byte of request) {
      socket.write(byte);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await once(socket, "close");
    assert.match(response, /^HTTP\/1\.1 200/);
    assert.match(response, /x-version: 1\.1/i);
    await listener.close(100);
  });
});
