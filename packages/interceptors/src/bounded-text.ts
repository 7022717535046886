import { ConnectError } from "@connectrpc/connect";

/** The most characters of a client's value an error message or a log field quotes. */
export const maxQuotedChars = 64;

/**
 * The most UTF-8 bytes of an error message sent to a client (`grpc-message`, a Connect or REST
 * error body) or written to a log; a longer one is cut and marked.
 */
export const maxErrorMessageBytes = 1024;

/**
 * `value` as a JSON string quoted in an error message, at most `max` characters of it (default
 * 64): a longer value is cut and marked, `"AAAA…"… (4194304 characters)`, so that an error never
 * echoes unbounded input back to the client or into a log.
 */
export function quote(value: unknown, max: number = maxQuotedChars): string {
  const text = String(value);
  if (text.length <= max) return JSON.stringify(text);
  return `${JSON.stringify(`${cutAt(text, max)}…`)} (${text.length} characters, cut)`;
}

/**
 * `text` cut to at most `maxBytes` bytes of UTF-8 (default 1 KiB), marked as cut when it was; for
 * messages and log fields that may carry a client's values.
 */
export function bounded(text: string, maxBytes: number = maxErrorMessageBytes): string {
  // A UTF-8 character is at most 3 bytes per UTF-16 code unit: short strings need no count.
  if (text.length * 3 <= maxBytes || Buffer.byteLength(text) <= maxBytes) return text;
  const marker = ` … (${Buffer.byteLength(text)} bytes, cut)`;
  const room = maxBytes - Buffer.byteLength(marker);
  let end = Math.min(text.length, room);
  while (end > 0 && Buffer.byteLength(text.slice(0, end)) > room) {
    end = Math.floor(end * 0.9);
  }
  return cutAt(text, end) + marker;
}

/**
 * `err` with its message bounded by `bounded` (code, metadata, details and cause kept); `err`
 * itself when its message is short enough.
 */
export function boundedError(err: ConnectError, maxBytes?: number): ConnectError {
  const message = bounded(err.rawMessage, maxBytes);
  if (message === err.rawMessage) return err;
  const out = new ConnectError(message, err.code, err.metadata, undefined, err.cause ?? err);
  out.details = err.details;
  return out;
}

/**
 * The principal's subject as logs and the audit log record it: at most 256 bytes (a token of
 * another issuer, accepted through its JWKS, may carry any subject). Undefined for anonymous calls.
 */
export function subjectOf(principal: { subject: string } | undefined): string | undefined {
  return principal === undefined ? undefined : bounded(principal.subject, 256);
}

/** The first `end` UTF-16 code units of `text`, never splitting a surrogate pair. */
function cutAt(text: string, end: number): string {
  const last = text.charCodeAt(end - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? end - 1 : end);
}
