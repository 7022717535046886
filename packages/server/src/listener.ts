import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";

/** A request handler for both protocols, like the one `connectNodeAdapter` returns. */
export type DualHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

export interface ListenerOptions {
  host: string;
  port: number;
  handler: DualHandler;
  /** Closes a connection that sends nothing for this long before its first request; default 10 s. */
  prefaceTimeoutMs?: number;
  /** HTTP/2 settings sent to clients. */
  http2Settings?: http2.Settings;
}

/** A listening port that serves HTTP/2 cleartext (h2c, prior knowledge) and HTTP/1.1. */
export interface Listener {
  readonly port: number;
  readonly host: string;
  /**
   * Stops accepting connections, asks HTTP/2 clients to go away (GOAWAY) and HTTP/1.1 clients to
   * close after their current response, and resolves once every connection has ended, destroying
   * whatever is still open after `graceMs`.
   */
  close(graceMs: number): Promise<void>;
}

// Every HTTP/2 connection starts with this preface (RFC 9113, section 3.4); no HTTP/1.1 request can.
const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/**
 * Listens on one plaintext port for both protocols. Node's cleartext HTTP/2 server refuses
 * HTTP/1.1 (`allowHTTP1` needs TLS and ALPN), and browsers speak only HTTP/1.1 to `http://`, so
 * each connection is routed by its first bytes: the HTTP/2 preface goes to the HTTP/2 server,
 * anything else to the HTTP/1.1 server.
 */
export async function listen(options: ListenerOptions): Promise<Listener> {
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  let draining = false;
  const handler: DualHandler = (req, res) => {
    // While draining, HTTP/1.1 responses carry `Connection: close` and end their connection.
    if (draining && res instanceof http.ServerResponse) res.shouldKeepAlive = false;
    options.handler(req, res);
  };
  const h2 = http2.createServer({ settings: options.http2Settings ?? {} }, handler);
  const h1 = http.createServer(handler as http.RequestListener);
  // The HTTP/1.1 server never listens itself; this starts its connection tracking, which enforces
  // its header and request timeouts and lets it close idle keep-alive connections.
  h1.emit("listening");
  h2.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  const prefaceTimeoutMs = options.prefaceTimeoutMs ?? 10_000;

  let drained: (() => void) | undefined;
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => {
      sockets.delete(socket);
      if (sockets.size === 0) drained?.();
    });
    route(socket, prefaceTimeoutMs, h1, h2);
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as net.AddressInfo;

  let closing: Promise<void> | undefined;
  return {
    port: address.port,
    host: options.host,
    close(graceMs) {
      closing ??= new Promise<void>((resolve) => {
        draining = true;
        server.close();
        for (const session of sessions) session.close();
        h1.closeIdleConnections();
        // A keep-alive response that began before draining leaves its connection idle afterwards.
        const sweep = setInterval(() => h1.closeIdleConnections(), 100);
        const timer = setTimeout(() => {
          for (const socket of sockets) socket.destroy();
        }, graceMs);
        drained = () => {
          clearInterval(sweep);
          clearTimeout(timer);
          h1.close(() => {});
          resolve();
        };
        if (sockets.size === 0) drained();
      });
      return closing;
    },
  };
}

function route(socket: net.Socket, timeoutMs: number, h1: http.Server, h2: http2.Http2Server) {
  let received: Buffer = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  const onError = () => socket.destroy();
  const onData = (chunk: Buffer) => {
    received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
    const n = Math.min(received.length, preface.length);
    const isHttp2 = received.subarray(0, n).equals(preface.subarray(0, n));
    if (isHttp2 && received.length < preface.length) return; // not enough bytes to tell yet
    clearTimeout(timer);
    socket.off("data", onData);
    socket.off("error", onError);
    socket.pause();
    socket.unshift(received);
    (isHttp2 ? h2 : h1).emit("connection", socket);
    process.nextTick(() => socket.resume());
  };
  socket.on("data", onData);
  socket.on("error", onError);
  socket.once("close", () => clearTimeout(timer));
}
