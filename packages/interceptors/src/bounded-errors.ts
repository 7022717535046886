import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { boundedError, maxErrorMessageBytes } from "./bounded-text.ts";
import { type Response, settled } from "./chain.ts";
import { mapError } from "./streams.ts";

export interface BoundedErrorsOptions {
  /** The most UTF-8 bytes of an error message a client receives. Default 1024. */
  maxBytes?: number;
}

/**
 * Cuts the message of every error a call ends with to `maxBytes` (marked as cut), whatever raised
 * it and whatever value it quotes, so that no client gets an unbounded `grpc-message` trailer or
 * Connect error body: a 4 MiB message does not fit in an HTTP/2 header frame and resets the
 * stream. The code, details and cause are kept. Put it first, outside every other interceptor.
 */
export function createBoundedErrorsInterceptor(options: BoundedErrorsOptions = {}): Interceptor {
  const maxBytes = options.maxBytes ?? maxErrorMessageBytes;
  const bound = (err: unknown) => (err instanceof ConnectError ? boundedError(err, maxBytes) : err);
  // Made once: a call costs one promise here, no closure.
  const answered = (res: Response): Response =>
    res.stream ? { ...res, message: mapError(res.message, bound) } : res;
  const failed = (err: unknown): never => {
    throw bound(err);
  };
  return (next) => (req) => settled(next, req).then(answered, failed);
}
