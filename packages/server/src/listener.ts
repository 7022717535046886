import { AsyncLocalStorage } from "node:async_hooks";
import * as diagnosticsChannel from "node:diagnostics_channel";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as nodeTls from "node:tls";

/** A request handler for both protocols, like the one `connectNodeAdapter` returns. */
export type DualHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

export interface Http2Limits {
  /** Streams one connection may have open at once. Default 1000. */
  maxConcurrentStreams?: number;
  /** Ping each connection this often, closing it when the ping goes unanswered; 0: never. Default 60000. */
  keepaliveIntervalMs?: number;
  /**
   * Close (GOAWAY) connections that have had no open stream for this long; 0: never. A connection
   * holding a stream, however quiet, is not idle. Default 300000 (5 minutes, longer than the
   * keepalive interval). HTTP/1.1 connections are closed after Node's keep-alive timeout (5 s).
   */
  idleTimeoutMs?: number;
  /**
   * Send GOAWAY to connections older than this, so clients reconnect and load spreads over new
   * instances; their streams get a minute more to finish. 0: never. Default 0.
   */
  maxConnectionAgeMs?: number;
}

export interface ListenerOptions {
  host: string;
  port: number;
  handler: DualHandler;
  /**
   * Sees every HTTP/2 stream first, as it arrives, and answers true for one it serves itself;
   * the others reach `handler` as usual.
   */
  streamHandler?: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => boolean;
  /** Closes a plaintext connection that sends nothing for this long; default 10 s. */
  prefaceTimeoutMs?: number;
  http2?: Http2Limits;
  /**
   * Serve TLS (1.2 or later; ALPN picks HTTP/2 or HTTP/1.1) instead of plaintext. With a client CA,
   * clients must present a certificate it signed (mutual TLS).
   */
  tls?: TlsOptions;
}

/** A listening port that serves HTTP/2 and HTTP/1.1, in plaintext or over TLS. */
export interface Listener {
  readonly port: number;
  readonly host: string;
  /**
   * Stops accepting connections, asks HTTP/2 clients to go away (GOAWAY) and HTTP/1.1 clients to
   * close after their current response, and resolves once every connection has ended, destroying
   * whatever is still open after `graceMs`.
   */
  close(graceMs: number): Promise<void>;
  /**
   * Serves another certificate, key and client CA to connections from now on; those open keep
   * theirs. Throws when the listener serves plaintext, which cannot be switched to TLS.
   */
  setTls(tls: TlsOptions): void;
}

/** The TLS a listener serves; see `ListenerOptions.tls`. */
export interface TlsOptions {
  cert: Buffer;
  key: Buffer;
  clientCa?: Buffer;
}

/**
 * Connections the kernel may queue before they are accepted (it caps this at
 * `net.core.somaxconn`). Node's default, 511, overflows when thousands of clients connect at once
 * while the process is busy: they then fail to connect instead of waiting their turn.
 */
const listenBacklog = 4096;

// Every HTTP/2 connection starts with this preface (RFC 9113, section 3.4); no HTTP/1.1 request can.
const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/**
 * Listens on one port for both protocols. Over TLS, ALPN decides. In plaintext, Node's HTTP/2
 * server refuses HTTP/1.1 (`allowHTTP1` needs TLS and ALPN), and browsers speak only HTTP/1.1 to
 * `http://`, so each connection is routed by its first bytes: the HTTP/2 preface goes to the
 * HTTP/2 server, anything else to the HTTP/1.1 server.
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
  const limits = options.http2 ?? {};
  const settings: http2.Settings = {
    maxConcurrentStreams: limits.maxConcurrentStreams ?? 1000,
    // The request headers a client may send on one stream, as Node's HTTP/1.1 parser takes them
    // (the start script's --max-http-header-size): advertised, and held by nghttp2 (a stream
    // over it is reset, ENHANCE_YOUR_CALM) once the client has acknowledged it; before that,
    // `routeStreams` holds it (nghttp2 takes up to 64 KiB from a client that never does).
    maxHeaderListSize: 16 * 1024,
  };
  const sessionLimits = {
    settings,
    // A connection's HTTP/2 buffers. The engine's own budget of request bytes per connection
    // (16 MiB, refused with RESOURCE_EXHAUSTED saying so) decides first; this cap is the floor
    // under it, which nghttp2 enforces by refusing new streams (ENHANCE_YOUR_CALM).
    maxSessionMemory: 32,
    // Rapid reset (CVE-2023-44487): a client resetting more than 33 streams a second, after a
    // burst of 1000, loses its connection.
    streamResetBurst: 1000,
    streamResetRate: 33,
  };
  const h2 =
    options.tls === undefined
      ? http2.createServer(sessionLimits)
      : http2.createSecureServer({
          ...sessionLimits,
          allowHTTP1: true,
          ...secureContextOf(options.tls),
        });
  h2.on("request", handler);
  routeStreams(h2, options.streamHandler ?? (() => false), settings.maxHeaderListSize ?? 16 * 1024);
  h2.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    manage(session, limits);
    session.once("close", () => sessions.delete(session));
  });

  let drained: (() => void) | undefined;
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => {
      sockets.delete(socket);
      if (sockets.size === 0) drained?.();
    });
  };

  let server: net.Server;
  let h1: http.Server | undefined;
  if (options.tls === undefined) {
    const plain = http.createServer(handler as http.RequestListener);
    // The HTTP/1.1 server never listens itself; this starts its connection tracking, which enforces
    // its header and request timeouts and lets it close idle keep-alive connections.
    plain.emit("listening");
    // Node closes an idle keep-alive connection after 5 s; a shorter idle timeout applies too.
    const idleMs = limits.idleTimeoutMs ?? 300_000;
    if (idleMs > 0) plain.keepAliveTimeout = Math.min(plain.keepAliveTimeout, idleMs);
    h1 = plain;
    const prefaceTimeoutMs = options.prefaceTimeoutMs ?? 10_000;
    // Each connection is handed on in the async context the listener was started in, this one: a
    // socket's data events have none of their own, and the calls it carries start in it (see
    // `serveInUnsampledTraces`). One snapshot for all of them (one per connection cost 3% of a
    // connection's CPU).
    const inListenerContext = AsyncLocalStorage.snapshot();
    server = net.createServer({ noDelay: true }, (socket) => {
      track(socket);
      route(socket, prefaceTimeoutMs, plain, h2, inListenerContext);
    });
  } else {
    server = h2;
    h2.on("connection", track);
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port: options.port, host: options.host, backlog: listenBacklog }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as net.AddressInfo;

  let closing: Promise<void> | undefined;
  return {
    port: address.port,
    host: options.host,
    setTls(tls) {
      if (!(h2 instanceof nodeTls.Server)) {
        throw new Error("this listener serves plaintext: TLS needs a restart with tls configured");
      }
      h2.setSecureContext(secureContextOf(tls));
    },
    close(graceMs) {
      closing ??= new Promise<void>((resolve) => {
        draining = true;
        server.close();
        for (const session of sessions) session.close();
        h1?.closeIdleConnections();
        // A keep-alive response that began before draining leaves its connection idle afterwards.
        const sweep = setInterval(() => h1?.closeIdleConnections(), 100);
        const timer = setTimeout(() => {
          for (const socket of sockets) socket.destroy();
        }, graceMs);
        drained = () => {
          clearInterval(sweep);
          clearTimeout(timer);
          h1?.close(() => {});
          resolve();
        };
        if (sockets.size === 0) drained();
      });
      return closing;
    },
  };
}

/** The secure context options of `tls`: TLS 1.2 or later, mutual TLS with a client CA. */
function secureContextOf(tls: TlsOptions): nodeTls.SecureContextOptions & nodeTls.TlsOptions {
  return {
    cert: tls.cert,
    key: tls.key,
    minVersion: "TLSv1.2",
    ...(tls.clientCa === undefined
      ? {}
      : { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true }),
  };
}

/**
 * Puts `streamHandler` in front of Node's compatibility layer, which turns every HTTP/2 stream into
 * a request and response object pair (and, over TLS, also serves HTTP/1.1 through the same
 * 'request' event). Adding the 'request' listener made Node register that layer as the one
 * 'stream' listener; it is taken off and called only for the streams `streamHandler` leaves, so
 * those get Node's own handling (CONNECT, Expect) unchanged. Should a Node release register it
 * differently, everything stays on the compatibility layer.
 *
 * A stream of a connection that has not acknowledged the server's SETTINGS (nghttp2 holds a client
 * to the header list size only once it has) is first measured as HTTP/2 counts it (name, value and
 * 32 bytes per field), and reset with ENHANCE_YOUR_CALM, as nghttp2 resets it, above
 * `maxHeaderListSize`: no handler sees it. Other streams cost nothing more.
 */
function routeStreams(
  h2: http2.Http2Server | http2.Http2SecureServer,
  streamHandler: NonNullable<ListenerOptions["streamHandler"]>,
  maxHeaderListSize: number,
): void {
  const compat = h2.listeners("stream");
  if (compat.length !== 1) return;
  const toRequest = compat[0] as (...args: unknown[]) => void;
  h2.removeAllListeners("stream");
  h2.on(
    "stream",
    (
      stream: http2.ServerHttp2Stream,
      headers: http2.IncomingHttpHeaders,
      flags: number,
      rawHeaders: string[],
    ) => {
      if (
        stream.session?.pendingSettingsAck === true &&
        headerListSize(rawHeaders) > maxHeaderListSize
      ) {
        // Closing with an error code emits the error on the stream: nobody else listens.
        stream.on("error", () => {});
        stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
        return;
      }
      if (!streamHandler(stream, headers)) toRequest.call(h2, stream, headers, flags, rawHeaders);
    },
  );
}

/** A header list's size as HTTP/2 counts it (RFC 9113, 6.5.2): name, value and 32 per field. */
function headerListSize(rawHeaders: readonly string[]): number {
  let size = 0;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    size += (rawHeaders[i] as string).length + (rawHeaders[i + 1] as string).length + 32;
  }
  return size;
}

/** Keepalive pings, the idle timeout and the maximum age of one HTTP/2 connection. */
function manage(session: http2.ServerHttp2Session, limits: Http2Limits): void {
  const timers: NodeJS.Timeout[] = [];
  const keepalive = limits.keepaliveIntervalMs ?? 60_000;
  if (keepalive > 0) {
    const ping = setInterval(() => {
      if (session.closed || session.destroyed) return;
      // A peer that does not answer within the interval is gone: free its resources.
      const deadline = setTimeout(() => session.destroy(), keepalive);
      deadline.unref();
      const sent = session.ping((err) => {
        clearTimeout(deadline);
        if (err) session.destroy();
      });
      if (!sent) clearTimeout(deadline);
    }, keepalive);
    timers.push(ping);
  }
  const idleMs = limits.idleTimeoutMs ?? 300_000;
  if (idleMs > 0) idleClocks.set(session, new IdleClock(session, idleMs));
  const maxAge = limits.maxConnectionAgeMs ?? 0;
  if (maxAge > 0) {
    timers.push(setTimeout(() => session.close(), maxAge));
    timers.push(setTimeout(() => session.destroy(), maxAge + 60_000));
  }
  for (const timer of timers) timer.unref();
  session.once("close", () => {
    for (const timer of timers) clearTimeout(timer);
  });
}

/** The idle clocks of the sessions whose idle time is watched. */
const idleClocks = new WeakMap<http2.Http2Session, IdleClock>();

/**
 * Counts a closing stream off its session's idle clock. One subscriber for every stream of the
 * process, told by Node as each stream closes (its session still set): a `close` listener on each
 * stream would be a closure, a `once` wrapper and an entry in the stream's listeners, all kept
 * until the stream goes, which is after its trailers have been written.
 */
function onStreamClosed(message: unknown): void {
  const session = (message as { stream: http2.Http2Stream }).stream.session;
  if (session !== undefined) idleClocks.get(session)?.closed();
}

/**
 * Closes `session` once it has had no open stream for `idleMs`. Not Node's `setTimeout`, which
 * counts frames: a live stream waiting for events sends none between keepalive pings, and an idle
 * connection kept busy by pings alone would never time out. One timer at most per session, made
 * when it has none pending, so a connection whose one stream opens and closes call after call does
 * not make a timer per call.
 */
class IdleClock {
  private open = 0;
  /** When the last stream closed (`performance.now()`). */
  private idleSince = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private readonly session: http2.ServerHttp2Session;
  private readonly idleMs: number;

  constructor(session: http2.ServerHttp2Session, idleMs: number) {
    this.session = session;
    this.idleMs = idleMs;
    if (!subscribed) {
      subscribed = true;
      diagnosticsChannel.subscribe(streamClosedChannel, onStreamClosed);
    }
    this.arm(idleMs);
    session.on("stream", () => {
      this.open++;
    });
    session.once("close", () => clearTimeout(this.timer));
  }

  closed(): void {
    if (--this.open > 0) return;
    this.idleSince = performance.now();
    if (this.timer === undefined && !this.session.closed) this.arm(this.idleMs);
  }

  private arm(ms: number): void {
    this.timer = setTimeout(this.check, ms);
    this.timer.unref();
  }

  private readonly check = () => {
    this.timer = undefined;
    // A stream open: the clock starts again when the last one closes.
    if (this.open > 0 || this.session.closed) return;
    const left = this.idleMs - (performance.now() - this.idleSince);
    if (left <= 0) this.session.close();
    else this.arm(left);
  };
}

/**
 * Node's diagnostics channel for a server stream that closes, published in Node 24 (experimental
 * there; the listener's idle-timeout test fails should a release stop publishing it).
 */
const streamClosedChannel = "http2.server.stream.close";
let subscribed = false;

function route(
  socket: net.Socket,
  timeoutMs: number,
  h1: http.Server,
  h2: http2.Http2Server,
  inListenerContext: <R>(fn: () => R) => R,
) {
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
    inListenerContext(() => (isHttp2 ? h2 : h1).emit("connection", socket));
    process.nextTick(() => socket.resume());
  };
  socket.on("data", onData);
  socket.on("error", onError);
  socket.once("close", () => clearTimeout(timer));
}
