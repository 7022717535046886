import { randomUUID } from "node:crypto";
import type { Interceptor } from "@connectrpc/connect";

export interface RequestIdPropagationOptions {
  /** The header that carries the id. Default: "x-request-id". */
  header?: string;
  /**
   * Returns the id to send, typically the id of the request being served; undefined or "" when
   * there is none, and a new UUID is sent. Asked once per call. Default: always a new UUID.
   */
  get?: () => string | undefined;
}

/**
 * Sends an `x-request-id` with every call that does not set its own, so one id follows a request
 * through every service it touches. Inside a server, hand on the id of the request being served,
 * for example from an AsyncLocalStorage that the server fills for each call:
 *
 * ```ts
 * const currentRequestId = new AsyncLocalStorage<string>();
 * // In the server, an interceptor runs each call in its id's store:
 * //   (next) => (req) => currentRequestId.run(req.contextValues.get(requestIdKey), () => next(req))
 * const transport = createGrpcTransport({
 *   baseUrl: "http://user-service:9090",
 *   interceptors: [
 *     createRequestIdPropagationInterceptor({ get: () => currentRequestId.getStore() }),
 *   ],
 * });
 * ```
 */
export function createRequestIdPropagationInterceptor(
  options: RequestIdPropagationOptions = {},
): Interceptor {
  const header = options.header ?? "x-request-id";
  const get = options.get ?? (() => undefined);
  return (next) => (req) => {
    if (!req.header.has(header)) req.header.set(header, get() || randomUUID());
    return next(req);
  };
}
