import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { createInterface } from "node:readline";
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

  it("lets the kernel queue more connections than Node's default backlog while it is busy", async () => {
    const listener = await listen({
      host: "127.0.0.1",
      port: 0,
      handler: (_req, res) => res.end(),
    });
    // Another process opens 1500 connections (Node's default backlog is 511) while this one is
    // too busy to accept any: each completes its handshake only if the accept queue has room;
    // past it the kernel drops the SYN and the client retries a second later.
    const wanted = 1500;
    const client = spawn(
      process.execPath,
      [
        "-e",
        `const net = require("node:net");
        process.stdin.once("data", () => {
          let connected = 0;
          const sockets = [];
          for (let i = 0; i < ${wanted}; i++) {
            const s = net.connect(${listener.port}, "127.0.0.1", () => connected++);
            s.on("error", () => {});
            sockets.push(s);
          }
          setTimeout(() => { console.log(connected); for (const s of sockets) s.destroy(); }, 600);
        });
        console.log("ready");`,
      ],
      { stdio: ["pipe", "pipe", "inherit"] },
    );
    const lines = createInterface({ input: client.stdout as NodeJS.ReadableStream })[
      Symbol.asyncIterator
    ]();
    assert.equal((await lines.next()).value, "ready");
    client.stdin?.write("go\n");
    // Busy for 900 ms: no connection is accepted meanwhile, the kernel queues them.
    const until = Date.now() + 900;
    while (Date.now() < until);
    const connected = Number((await lines.next()).value);
    client.kill();
    await listener.close(100);
    assert.equal(connected, wanted, "every connection completed its handshake within 600 ms");
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

  it("closes an HTTP/2 connection without streams after the idle timeout, never one with a stream open", async () => {
    let finish: (() => void) | undefined;
    const listener = await listen({
      host: "127.0.0.1",
      port: 0,
      http2: { idleTimeoutMs: 100 },
      handler: (req, res) => {
        if (req.url === "/hold") finish = () => res.end("done");
        else res.end("ok");
      },
    });
    const url = `http://127.0.0.1:${listener.port}`;
    const idle = http2.connect(url);
    await once(idle, "goaway");
    await once(idle, "close");

    // A quiet stream open for many idle timeouts keeps its connection; its end starts the clock.
    const busy = http2.connect(url);
    let closed = false;
    busy.once("close", () => (closed = true));
    const held = busy.request({ ":path": "/hold" });
    held.resume();
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal(closed, false, "a connection with an open stream was closed as idle");
    finish?.();
    await once(held, "close");
    await once(busy, "close");
    await listener.close(100);
  });

  it("closes an idle HTTP/1.1 keep-alive connection after the idle timeout", async () => {
    const listener = await listen({
      host: "127.0.0.1",
      port: 0,
      http2: { idleTimeoutMs: 100 },
      handler: (_req, res) => res.end("ok"),
    });
    const agent = new http.Agent({ keepAlive: true });
    const socketClosed = new Promise<void>((resolve, reject) => {
      http
        .get(`http://127.0.0.1:${listener.port}/`, { agent }, (res) => {
          res.resume();
          res.socket.once("close", () => resolve());
        })
        .on("error", reject);
    });
    await socketClosed;
    agent.destroy();
    await listener.close(100);
  });
});
