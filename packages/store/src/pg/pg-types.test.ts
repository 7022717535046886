import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pg from "pg";
import { parseUtcTimestamp } from "./pg-types.ts";

const generic = pg.types.getTypeParser(1184, "text") as (text: string) => Date;

describe("timestamptz text as a UTC session writes it", () => {
  it("reads the same instant as the driver's parser, to the millisecond", () => {
    for (const text of [
      "2026-12-06 12:04:08+00",
      "2026-12-06 12:04:08.1+00",
      "2026-12-06 12:04:08.123+00",
      "2026-12-06 12:04:08.123456+00",
      "1970-01-01 00:00:00+00",
      "2000-02-29 23:59:59.999+00",
    ]) {
      assert.equal(parseUtcTimestamp(text).getTime(), generic(text).getTime(), text);
    }
    assert.equal(
      parseUtcTimestamp("2026-12-06 12:04:08.5+00").toISOString(),
      "2026-12-06T12:04:08.500Z",
    );
  });

  it("leaves what it does not recognise to the driver's parser", () => {
    for (const text of ["2026-12-06 13:04:08.25+01", "infinity", "0099-01-01 00:00:00+00 BC"]) {
      assert.deepEqual(parseUtcTimestamp(text), generic(text), text);
    }
  });
});
