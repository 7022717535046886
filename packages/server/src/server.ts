import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { OrderService } from "@keel/gen/order/v1/order_pb";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { createRecoveryInterceptor } from "@keel/interceptors";
import type { Store } from "@keel/store";
import type { Logger } from "pino";
import { storeErrorToConnect } from "./errors.ts";
import { type Listener, listen } from "./listener.ts";
import { createOrderService } from "./order-service.ts";
import { createPasswordHasher } from "./passwords.ts";
import { createTokenIssuer, type TokenIssuerOptions } from "./tokens.ts";
import { createRemoteUserDirectory } from "./user-directory.ts";
import { createUserService } from "./user-service.ts";

export interface ServerOptions {
  /** The address to listen on; default "0.0.0.0". */
  host?: string;
  /** The port for gRPC, gRPC-Web and Connect; 0 picks a free one. Default 9090. */
  port?: number;
  /** Where users, credentials and activities live. Closed by `close()`. */
  store: Store;
  /** How access and refresh tokens are signed. */
  tokens: TokenIssuerOptions;
  /** log2 of the scrypt cost for password hashes; default 15. */
  passwordCost?: number;
  /**
   * Where OrderService finds UserService, for example `http://users.internal:9090`.
   * Default: this server itself.
   */
  userServiceUrl?: string;
  /** Largest message accepted or sent, in bytes; default 4 MiB. */
  maxMessageBytes?: number;
  logger: Logger;
}

export interface RunningServer {
  readonly port: number;
  /** The base URL clients use, for example `http://127.0.0.1:9090`. */
  readonly url: string;
  /**
   * Stops the server: no new connections, open streams end with UNAVAILABLE, calls in flight get
   * `graceMs` (default 10 s) to finish, then the store is closed.
   */
  close(graceMs?: number): Promise<void>;
}

/** Starts serving UserService and OrderService over gRPC, gRPC-Web and Connect on one port. */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { store, logger } = options;
  const shutdown = new AbortController();
  const maxMessageBytes = options.maxMessageBytes ?? 4 * 1024 * 1024;
  const userService = createUserService({
    store,
    passwords: createPasswordHasher({ cost: options.passwordCost ?? 15 }),
    tokens: createTokenIssuer(options.tokens),
  });
  let selfUrl = "";
  const orderService = createOrderService(
    store,
    createRemoteUserDirectory({ baseUrl: options.userServiceUrl ?? (() => selfUrl) }),
  );
  const handler = connectNodeAdapter({
    routes: (router) => {
      router.service(UserService, userService);
      router.service(OrderService, orderService);
    },
    interceptors: [createRecoveryInterceptor({ logger, mapError: storeErrorToConnect })],
    readMaxBytes: maxMessageBytes,
    writeMaxBytes: maxMessageBytes,
    shutdownSignal: shutdown.signal,
  });
  const host = options.host ?? "0.0.0.0";
  const listener: Listener = await listen({ host, port: options.port ?? 9090, handler });
  const urlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  selfUrl = `http://${urlHost.includes(":") ? `[${urlHost}]` : urlHost}:${listener.port}`;
  logger.info({ host, port: listener.port }, "serving gRPC, gRPC-Web and Connect");

  let closing: Promise<void> | undefined;
  return {
    port: listener.port,
    url: selfUrl,
    close(graceMs = 10_000) {
      closing ??= (async () => {
        const closed = listener.close(graceMs);
        shutdown.abort(
          new ConnectError("the server is shutting down; reconnect", Code.Unavailable),
        );
        await closed;
        await store.close();
        logger.info("stopped");
      })();
      return closing;
    },
  };
}
