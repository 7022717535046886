import { randomFillSync } from "node:crypto";
import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { settled } from "./chain.ts";
import { requestIdKey } from "./context.ts";

export interface RequestIdOptions {
  /** The header that carries the id, in requests and in responses. Default: "x-request-id". */
  header?: string;
  /**
   * Creates the id of a call that arrives without a valid one. Default: `newRequestId`, a random
   * (version 4) UUID.
   */
  generate?: () => string;
}

const hexDigits = Buffer.from("0123456789abcdef");
/** The random bytes of the next 256 ids, filled 4 KiB at a time. */
const pool = Buffer.alloc(16 * 256);
let poolAt = pool.length;
/** Where each random byte's two digits go in "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx". */
const digitAt = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
const text = Buffer.from("00000000-0000-0000-0000-000000000000");

/**
 * A random version 4 UUID, as `crypto.randomUUID` makes one (16 bytes of the system's random
 * source, the version and variant bits set), written into one flat string: randomUUID builds its
 * text by concatenation, about 400 bytes of intermediate strings per id, and 60 ns more.
 */
export function newRequestId(): string {
  if (poolAt === pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  pool[poolAt + 6] = ((pool[poolAt + 6] as number) & 0x0f) | 0x40;
  pool[poolAt + 8] = ((pool[poolAt + 8] as number) & 0x3f) | 0x80;
  for (let i = 0; i < 16; i++) {
    const byte = pool[poolAt + i] as number;
    const at = digitAt[i] as number;
    text[at] = hexDigits[byte >> 4] as number;
    text[at + 1] = hexDigits[byte & 15] as number;
  }
  poolAt += 16;
  return text.toString("latin1", 0, 36);
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
  const generate = options.generate ?? newRequestId;

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
