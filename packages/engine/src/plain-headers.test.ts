import assert from "node:assert/strict";
import type { OutgoingHttpHeaders } from "node:http2";
import { describe, it } from "node:test";
import { appendHeaders, copyHeaders, PlainHeaders } from "./plain-headers.ts";

/** Runs the same steps on undici's Headers and on PlainHeaders; both must end up alike. */
function both(steps: (h: Headers) => void): [Headers, Headers] {
  const fetchHeaders = new Headers();
  const plain = new PlainHeaders();
  steps(fetchHeaders);
  steps(plain);
  return [fetchHeaders, plain];
}

function snapshot(h: Headers) {
  const forEach: [string, string][] = [];
  h.forEach((value, name) => {
    forEach.push([name, value]);
  });
  return {
    entries: [...h],
    forEach,
    keys: [...h.keys()],
    values: [...h.values()],
    cookies: h.getSetCookie(),
  };
}

describe("PlainHeaders behaves as Fetch's Headers", () => {
  it("matches undici for case, trimming, appending, cookies, deleting and order", () => {
    const [expected, actual] = both((h) => {
      h.set("X-Request-Id", "  abc \t");
      h.append("accept", "a");
      h.append("Accept", "b");
      h.append("set-cookie", "a=1");
      h.append("Set-Cookie", "b=2");
      h.set("zeta", "last");
      h.set("content-type", "application/grpc");
      h.set("to-delete", "x");
      h.delete("TO-DELETE");
    });
    assert.deepEqual(snapshot(actual), snapshot(expected));
    for (const name of ["x-request-id", "ACCEPT", "set-cookie", "missing", "to-delete"]) {
      assert.equal(actual.get(name), expected.get(name), name);
      assert.equal(actual.has(name), expected.has(name), name);
    }
  });

  it("refuses invalid names and values with a TypeError, as undici does", () => {
    for (const [name, value] of [
      ["bad name", "v"],
      ["ok", "line\r\nbreak"],
      ["ok", "nul\0"],
      ["", "v"],
    ] as const) {
      assert.throws(() => new Headers().set(name, value), TypeError);
      assert.throws(() => new PlainHeaders().set(name, value), TypeError);
      assert.throws(() => new PlainHeaders().append(name, value), TypeError);
    }
  });

  it("takes an HTTP/2 request's headers without its pseudo-headers, joining repeated ones", () => {
    const h = PlainHeaders.fromHttp2({
      ":path": "/user.v1.UserService/GetUser",
      ":method": "POST",
      "content-type": "application/grpc",
      "x-tag": ["a", "b"],
      authorization: "Bearer t",
    });
    assert.deepEqual(
      [...h],
      [
        ["authorization", "Bearer t"],
        ["content-type", "application/grpc"],
        ["x-tag", "a, b"],
      ],
    );
    assert.equal(h.get(":path"), null);
    // What connect does with headers it is given: copying them into a Headers of its own.
    assert.equal(new Headers(h).get("x-tag"), "a, b");
  });

  it("reads a request's headers where they are, and answers alike once one is changed", () => {
    const incoming = {
      ":path": "/p",
      "content-type": "application/grpc",
      "x-tag": ["a", "b"],
      "set-cookie": ["c=1", "d=2"],
      authorization: "Bearer t",
    };
    const copy = structuredClone(incoming);
    const h = PlainHeaders.fromHttp2(incoming);
    const fetch = new Headers();
    for (const [name, value] of Object.entries(incoming)) {
      if (name.startsWith(":")) continue;
      for (const v of Array.isArray(value) ? value : [value]) fetch.append(name, v);
    }
    const reads = (x: Headers) =>
      ["Content-Type", "x-tag", "set-cookie", "authorization", "missing"].map((n) => [
        x.get(n),
        x.has(n),
      ]);
    // A pseudo-header is no header (undici refuses its name).
    assert.deepEqual([h.get(":path"), h.has(":path")], [null, false]);
    assert.deepEqual(reads(h), reads(fetch));
    h.set("x-request-id", "r1");
    fetch.set("x-request-id", "r1");
    h.delete("authorization");
    fetch.delete("authorization");
    assert.deepEqual(reads(h), reads(fetch));
    assert.deepEqual([...h], [...fetch]);
    assert.equal(h.get("x-request-id"), "r1");
    // The stream's own headers are never written.
    assert.deepEqual(incoming, copy);
  });
});

describe("copyHeaders", () => {
  const steps = (h: Headers) => {
    h.set("x-request-id", "abc");
    h.append("x-tag", "a");
    h.append("x-tag", "b");
    h.append("set-cookie", "a=1");
    h.append("set-cookie", "b=2");
  };

  it("gives the same HTTP/2 fields for PlainHeaders as for Fetch's Headers, each cookie kept", () => {
    const [fetchHeaders, plain] = both(steps);
    const fromFetch: OutgoingHttpHeaders = {};
    const fromPlain: OutgoingHttpHeaders = {};
    copyHeaders(fetchHeaders, fromFetch);
    copyHeaders(plain, fromPlain);
    const expected = { "x-request-id": "abc", "x-tag": "a, b", "set-cookie": ["a=1", "b=2"] };
    assert.deepEqual({ ...fromFetch }, expected);
    assert.deepEqual({ ...fromPlain }, expected);
  });

  it("adds to what the target holds and leaves the headers unchanged", () => {
    const plain = new PlainHeaders();
    plain.set("x-one", "1");
    const out: OutgoingHttpHeaders = { ":status": 200, "content-type": "application/grpc" };
    copyHeaders(plain, out);
    copyHeaders(new PlainHeaders(), out);
    assert.deepEqual(out, { ":status": 200, "content-type": "application/grpc", "x-one": "1" });
    assert.deepEqual([...plain], [["x-one", "1"]]);
  });

  it("copies headers still read where they are as it copies them once changed", () => {
    const preset = Object.freeze({
      ":status": "200",
      "grpc-status": "0",
      "x-tag": ["a", "b"],
      "set-cookie": ["c=1", "d=2"],
    });
    const untouched = new PlainHeaders(preset);
    const changed = new PlainHeaders(preset);
    changed.set("x-new", "1");
    changed.delete("x-new");
    const fields = (h: PlainHeaders) => {
      const out: OutgoingHttpHeaders = {};
      copyHeaders(h, out);
      return { object: { ...out }, raw: appendHeaders(h, []) };
    };
    const expected = {
      object: { "grpc-status": "0", "x-tag": "a, b", "set-cookie": ["c=1", "d=2"] },
      raw: ["grpc-status", "0", "x-tag", "a, b", "set-cookie", "c=1", "set-cookie", "d=2"],
    };
    assert.deepEqual(fields(untouched), expected);
    assert.deepEqual(fields(changed), expected);
    // A copy's cookies are its own, and the shared fields are never written.
    const out: OutgoingHttpHeaders = {};
    copyHeaders(untouched, out);
    (out["set-cookie"] as string[]).push("e=3");
    untouched.set("grpc-status", "13");
    assert.deepEqual(preset["set-cookie"], ["c=1", "d=2"]);
    assert.equal(preset["grpc-status"], "0");
    assert.equal(untouched.get("grpc-status"), "13");
    assert.deepEqual(fields(new PlainHeaders()), { object: {}, raw: [] });
  });
});
