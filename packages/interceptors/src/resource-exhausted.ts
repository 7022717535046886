import { Code, ConnectError } from "@connectrpc/connect";
import { RetryInfoSchema } from "@keel/gen/errdetails/v1/errdetails_pb";

/**
 * RESOURCE_EXHAUSTED that tells the client when to try again, the two ways clients read it: a
 * `google.rpc.RetryInfo` detail with the delay (gRPC clients, keel's retry policy) and a
 * `retry-after` header in whole seconds (HTTP clients, proxies).
 */
export function resourceExhausted(message: string, retryAfterMs: number): ConnectError {
  const ms = Math.max(0, Math.ceil(retryAfterMs));
  return new ConnectError(
    message,
    Code.ResourceExhausted,
    { "retry-after": String(Math.ceil(ms / 1000)) },
    [
      {
        desc: RetryInfoSchema,
        value: {
          retryDelay: { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 },
        },
      },
    ],
  );
}
