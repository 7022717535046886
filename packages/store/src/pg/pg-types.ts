import pg from "pg";

/** PostgreSQL's type OID of `timestamptz`. */
const timestamptzOid = 1184;
const defaultTimestamptz = pg.types.getTypeParser(timestamptzOid, "text");

/**
 * Reads `timestamptz` text as a session with `TimeZone=UTC` writes it
 * (`2026-12-06 12:04:08.123456+00`) with a few `slice`s and one `Date.UTC`, where the driver's
 * generic parser runs regular expressions over it: a page of 100 orders reads 400 of them.
 * Anything else (years outside 1000–9999, `infinity`, another offset) goes to the generic parser.
 * Milliseconds are kept, as a Date holds no more.
 */
export function parseUtcTimestamp(text: string): Date {
  const end = text.length - 3;
  if (
    text.charCodeAt(4) !== 45 || // "-"
    text.charCodeAt(10) !== 32 || // " "
    text.slice(end) !== "+00" ||
    (end !== 19 && text.charCodeAt(19) !== 46) // "." before a fraction
  ) {
    return defaultTimestamptz(text) as Date;
  }
  const fraction = end === 19 ? 0 : Number(`${text.slice(20, Math.min(end, 23))}00`.slice(0, 3));
  return new Date(
    Date.UTC(
      Number(text.slice(0, 4)),
      Number(text.slice(5, 7)) - 1,
      Number(text.slice(8, 10)),
      Number(text.slice(11, 13)),
      Number(text.slice(14, 16)),
      Number(text.slice(17, 19)),
      fraction,
    ),
  );
}

/**
 * The type parsers of keel's pooled connections: the driver's, with `timestamptz` read by
 * `parseUtcTimestamp` (the connections run with `TimeZone=UTC`).
 */
export const keelTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === timestamptzOid && format !== "binary"
      ? parseUtcTimestamp
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig["getTypeParser"],
};
