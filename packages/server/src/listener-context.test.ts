import assert from "node:assert/strict";
import { AsyncLocalStorage } from "node:async_hooks";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as http from "node:http";
import * as http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { writeDevCerts } from "./dev-certs.ts";
import { type Listener, listen } from "./listener.ts";

// The server starts its listener in an unsampled new trace's context so that its calls need no
// context of their own (`serveInUnsampledTraces`): that holds only if every request, over every
// transport, runs in the context the listener was started in, also after awaiting its body.

const storage = new AsyncLocalStorage<string>();
const dir = mkdtempSync(join(tmpdir(), "keel-listener-context-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Where a request ran: as it arrived, and once its body was read. */
type Seen = { arrived: string | undefined; read: string | undefined };

async function start(tls: boolean): Promise<{ listener: Listener; seen: Seen[] }> {
  const seen: Seen[] = [];
  const answer = async (body: NodeJS.ReadableStream, end: () => void) => {
    const arrived = storage.getStore();
    for await (const _ of body);
    seen.push({ arrived, read: storage.getStore() });
    end();
  };
  let material: { cert: Buffer; key: Buffer } | undefined;
  if (tls) {
    await writeDevCerts({ dir });
    material = {
      cert: readFileSync(join(dir, "server.pem")),
      key: readFileSync(join(dir, "server-key.pem")),
    };
  }
  const listener = await storage.run("listener", () =>
    listen({
      host: "127.0.0.1",
      port: 0,
      handler: (req, res) => void answer(req as NodeJS.ReadableStream, () => res.end("ok")),
      streamHandler: (stream) => {
        void answer(stream, () => {
          stream.respond({ ":status": 200 });
          stream.end("ok");
        });
        return true;
      },
      ...(material === undefined ? {} : { tls: material }),
    }),
  );
  return { listener, seen };
}

function h2Call(url: string, ca?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url, ca === undefined ? {} : { ca });
    session.on("error", reject);
    const req = session.request({ ":method": "POST", ":path": "/" });
    req.on("error", reject);
    req.end("body");
    req.resume();
    req.on("end", () => {
      session.close();
      resolve();
    });
  });
}

function h1Call(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: "POST", path: "/", agent: false });
    req.on("error", reject);
    req.on("response", (res) => {
      res.resume();
      res.on("end", resolve);
    });
    req.end("body");
  });
}

describe("a listener's requests run in the context it was started in", () => {
  it("over plaintext HTTP/2 and HTTP/1.1, as they arrive and after their bodies", async () => {
    const { listener, seen } = await start(false);
    try {
      // Called from outside that context.
      await storage.run("client", async () => {
        await h2Call(`http://127.0.0.1:${listener.port}`);
        await h1Call(listener.port);
      });
      assert.deepEqual(seen, [
        { arrived: "listener", read: "listener" },
        { arrived: "listener", read: "listener" },
      ]);
    } finally {
      await listener.close(100);
    }
  });

  it("over TLS", async () => {
    const { listener, seen } = await start(true);
    try {
      await storage.run("client", () =>
        h2Call(`https://localhost:${listener.port}`, readFileSync(join(dir, "ca.pem"))),
      );
      assert.deepEqual(seen, [{ arrived: "listener", read: "listener" }]);
    } finally {
      await listener.close(100);
    }
  });
});
