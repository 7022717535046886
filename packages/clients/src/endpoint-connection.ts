import type * as http2 from "node:http2";
import * as net from "node:net";
import type { Transport } from "@connectrpc/connect";
import { Http2SessionManager } from "@connectrpc/connect-node";
import {
  type ConnectionOptions,
  createProtocolTransport,
  pingOptions,
  tlsSessionOptions,
} from "./transport.ts";

/** An endpoint's transport, with what a balancer needs to watch its connection. */
export interface EndpointConnection {
  /** Calls the endpoint: no interceptors, no default deadline. */
  transport: Transport;
  /**
   * A transport for the endpoint's grpc.health.v1 Watch, on a connection of its own that never
   * keeps the process alive (an open Watch would otherwise keep it running forever).
   */
  healthTransport(): Transport;
  /** Checks that the endpoint accepts connections again (a TCP connection, closed at once). */
  probe(): Promise<boolean>;
  /** Calls `listener` whenever the server sends GOAWAY on the calls' connection. */
  onGoaway(listener: () => void): void;
  /** Closes the connections; calls in flight fail. */
  close(): void;
}

/** The transport and connection handles of one endpoint of a balanced client. */
export function createEndpointConnection(
  baseUrl: string,
  options: ConnectionOptions,
): EndpointConnection {
  const httpVersion = options.httpVersion ?? "2";
  const ping = pingOptions(options);
  const goawayListeners: (() => void)[] = [];
  const calls =
    httpVersion === "2"
      ? new WatchedSessionManager(baseUrl, ping, {
          tls: tlsSessionOptions(options),
          onGoaway: () => {
            for (const listener of goawayListeners) listener();
          },
        })
      : undefined;
  let health: { transport: Transport; sessions?: Http2SessionManager } | undefined;
  return {
    transport: createProtocolTransport(baseUrl, options, { sessionManager: calls }),
    healthTransport() {
      if (health === undefined) {
        const sessions =
          httpVersion === "2"
            ? new WatchedSessionManager(baseUrl, ping, {
                tls: tlsSessionOptions(options),
                background: true,
              })
            : undefined;
        health = {
          transport: createProtocolTransport(baseUrl, options, { sessionManager: sessions }),
          ...(sessions === undefined ? {} : { sessions }),
        };
      }
      return health.transport;
    },
    probe: () => probeTcp(baseUrl),
    onGoaway(listener) {
      goawayListeners.push(listener);
    },
    close() {
      calls?.abort();
      health?.sessions?.abort();
    },
  };
}

/**
 * Whether `baseUrl`'s host accepts a TCP connection. The probe stays clear of the calls' HTTP/2
 * sessions: connect-node replaces a dead session lazily, when the next call needs one.
 */
function probeTcp(baseUrl: string): Promise<boolean> {
  const url = new URL(baseUrl);
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.unref();
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/**
 * connect-node's session manager, watching each connection it opens:
 * - it calls `onGoaway` when the server sends GOAWAY;
 * - with `background`, the connection never keeps the process alive (for health Watch streams);
 * - it keeps an `error` listener on the connection for good. connect-node destroys a connection
 *   that gets GOAWAY with no open streams, and the error of that arrives when its socket has
 *   closed; a call made in between replaces the connection and removes connect-node's listeners
 *   first, and the late `error` event, with nobody listening, would crash the process. Calls see
 *   their connection's errors on their own streams.
 */
class WatchedSessionManager extends Http2SessionManager {
  private readonly onGoaway: () => void;
  private readonly background: boolean;
  private readonly watched = new WeakSet<http2.Http2Session>();

  constructor(
    url: string,
    ping: ReturnType<typeof pingOptions>,
    options: {
      tls: ReturnType<typeof tlsSessionOptions>;
      onGoaway?: () => void;
      background?: boolean;
    },
  ) {
    super(url, ping, options.tls);
    this.onGoaway = options.onGoaway ?? (() => {});
    this.background = options.background ?? false;
  }

  override async request(
    ...args: Parameters<Http2SessionManager["request"]>
  ): Promise<http2.ClientHttp2Stream> {
    const stream = await super.request(...args);
    const session = stream.session;
    if (session !== undefined) {
      // A new stream refs the connection again (connect-node refs it for the first open stream).
      if (this.background) session.unref();
      if (!this.watched.has(session)) {
        this.watched.add(session);
        session.on("error", ignore);
        session.once("goaway", this.onGoaway);
      }
    }
    return stream;
  }
}

function ignore(): void {}
