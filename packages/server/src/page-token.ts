import { Code, ConnectError } from "@connectrpc/connect";

const defaultPageSize = 50;
const maxPageSize = 1000;
/** Ids are int64 in the API and the databases: a larger id in a token was never issued. */
const maxId = 2n ** 63n - 1n;

/** The number of rows a page holds: 0 means 50, more than 1000 is capped (AIP-158). */
export function resolvePageSize(pageSize: number): number {
  return Math.min(pageSize <= 0 ? defaultPageSize : pageSize, maxPageSize);
}

/**
 * Opaque page tokens for keyset pagination: the last id of the page and the filter it was issued
 * for, so that a token cannot silently be reused with another filter.
 */
export function encodePageToken(afterId: bigint, filter: string): string {
  return Buffer.from(JSON.stringify({ v: 1, a: afterId.toString(), f: filter })).toString(
    "base64url",
  );
}

/**
 * The id a page token continues after, or undefined for the first page. Anything this service did
 * not issue (not base64url JSON of the right shape, an id outside 0 to 2^63-1) or issued for
 * another filter → INVALID_ARGUMENT, never a database error.
 */
export function decodePageToken(token: string, filter: string): bigint | undefined {
  if (token === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw invalid("is not a token this service issued; pass next_page_token unchanged");
  }
  const { v, a, f } = (parsed ?? {}) as { v?: unknown; a?: unknown; f?: unknown };
  if (v !== 1 || typeof a !== "string" || !/^[0-9]{1,19}$/.test(a) || typeof f !== "string") {
    throw invalid("is not a token this service issued; pass next_page_token unchanged");
  }
  const afterId = BigInt(a);
  if (afterId > maxId) {
    throw invalid("is not a token this service issued; pass next_page_token unchanged");
  }
  if (f !== filter) throw invalid("was issued for another filter; keep the filter while paging");
  return afterId;
}

function invalid(problem: string): ConnectError {
  return new ConnectError(`invalid request: page_token: ${problem}`, Code.InvalidArgument);
}
