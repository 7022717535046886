import { randomUUID } from "node:crypto";
import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { settled } from "./chain.ts";
import { requestIdKey } from "./context.ts";

export interface RequestIdOptions {
  /** The header that carries the id, in requests and in responses. Default: "x-request-id". */
  header?: string;
  /**
   * Creates the id of a call that arrives without a valid one. Default: `crypto.randomUUID`.
   */
  generate?: () => string;
}

/** What an incoming id may look like: short, and nothing that could forge a log line. */
const validId = /^[A-Za-z0-9._:/+=-]{1,128}$/;

/**
 * Gives every call a request id: the caller's `x-request-id` when it is 1 to 128 characters of
 * `[A-Za-z0-9._:/+=-]`, otherwise a new one. The handler and later interceptors find it under
 * `requestIdKey`; the caller gets it back as the `x-request-id` response header, also when the call
 * fails.
 *
 * Place it first, before recovery: connect replaces an error that is not a ConnectError by a bare
 * INTERNAL, so only a ConnectError can carry the id back to the caller.
 */
export function createRequestIdInterceptor(options: RequestIdOptions = {}): Interceptor {
  const header = (options.header ?? "x-request-id").toLowerCase();
  const generate = options.generate ?? randomUUID;

  return (next) => (req) => {
    const incoming = req.header.get(header);
    const id = incoming !== null && validId.test(incoming) ? incoming : generate();
    req.contextValues.set(requestIdKey, id);
    return settled(next, req).then(
      // A stream that fails later still has these headers, which clients add to the error's metadata.
      (res) => {
        res.header.set(header, id);
        return res;
      },
      (err: unknown) => {
        throw withRequestId(err, header, id);
      },
    );
  };
}

/**
 * Connect copies an error's metadata into the response headers (Connect unary) or trailers (gRPC,
 * gRPC-Web, Connect streams), except for an error received from another service, whose metadata
 * it drops: that one is rethrown as a new error with the same code, message and details.
 */
function withRequestId(err: unknown, header: string, id: string): unknown {
  if (!(err instanceof ConnectError)) return err;
  if (!err.isWireError) {
    err.metadata.set(header, id);
    return err;
  }
  const relayed = new ConnectError(err.rawMessage, err.code, { [header]: id }, undefined, err);
  relayed.details = err.details;
  return relayed;
}
