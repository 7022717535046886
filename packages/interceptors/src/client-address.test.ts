import assert from "node:assert/strict";
import { isIP } from "node:net";
import { describe, it } from "node:test";
import { cidrProblem } from "./cidr.ts";
import {
  addressOf,
  createClientAddressResolver,
  type ForwardedHeader,
  forwardedFor,
  hopsFromTheRight,
} from "./client-address.ts";

const proxy = "10.0.0.2";
const behind = (header: ForwardedHeader = "x-forwarded-for") =>
  createClientAddressResolver({ trustedProxies: ["10.0.0.0/8", "fd00::/8"], header });

describe("client address: x-forwarded-for", () => {
  const resolve = behind();
  const xff = (value: string | string[], peer = proxy) =>
    resolve(peer, { "x-forwarded-for": value });

  it("is the socket's address when no proxy is trusted, whatever the headers say", () => {
    const none = createClientAddressResolver();
    assert.equal(none("203.0.113.9", { "x-forwarded-for": "198.51.100.1" }), "203.0.113.9");
    assert.equal(createClientAddressResolver({ trustedProxies: [] })("::1", {}), "::1");
  });

  it("ignores the header of a connection that is not from a trusted proxy", () => {
    assert.equal(xff("198.51.100.1", "203.0.113.9"), "203.0.113.9");
    assert.equal(xff("10.0.0.1, 198.51.100.1", "203.0.113.9"), "203.0.113.9");
  });

  it("takes the rightmost hop that is not a trusted proxy", () => {
    assert.equal(xff("198.51.100.1"), "198.51.100.1");
    // The client made up the left part; each trusted proxy appended the address it saw.
    assert.equal(xff("1.2.3.4, 198.51.100.1, 10.0.0.9, 10.1.1.1"), "198.51.100.1");
    assert.equal(xff("1.2.3.4,198.51.100.1"), "198.51.100.1");
    assert.equal(xff("  2001:db8::1 ,\tfd00::5 "), "2001:db8::1");
  });

  it("reads several header lines as one list, in order", () => {
    assert.equal(xff(["1.2.3.4", "198.51.100.1, 10.0.0.9"]), "198.51.100.1");
    assert.equal(xff(["198.51.100.1", "10.0.0.9"]), "198.51.100.1");
  });

  it("is the leftmost hop when every hop is a trusted proxy", () => {
    assert.equal(xff("10.0.0.7, 10.0.0.9"), "10.0.0.7");
  });

  it("reads addresses with ports and IPv6 in brackets", () => {
    assert.equal(xff("198.51.100.1:5555, 10.0.0.9:80"), "198.51.100.1");
    assert.equal(xff("[2001:db8::1]:443"), "2001:db8::1");
    assert.equal(xff("[2001:db8::1]"), "2001:db8::1");
  });

  it("matches IPv4-mapped IPv6 addresses against IPv4 ranges, and the other way round", () => {
    assert.equal(xff("198.51.100.1", "::ffff:10.0.0.2"), "198.51.100.1");
    assert.equal(xff("198.51.100.1, ::ffff:10.9.9.9"), "198.51.100.1");
    const mapped = createClientAddressResolver({ trustedProxies: ["::ffff:192.168.0.0/112"] });
    assert.equal(mapped("192.168.3.4", { "x-forwarded-for": "198.51.100.1" }), "198.51.100.1");
    assert.equal(mapped("192.169.0.1", { "x-forwarded-for": "198.51.100.1" }), "192.169.0.1");
  });

  it("stops at the proxy that wrote a hop that is no address", () => {
    for (const bad of [
      "unknown",
      "",
      "  ",
      "not-an-ip",
      "1.2.3",
      "1.2.3.4:http",
      "[::1",
      "[1.2.3.4]",
    ])
      assert.equal(xff(`198.51.100.1, ${bad}, 10.0.0.9`), "10.0.0.9", JSON.stringify(bad));
    assert.equal(xff("unknown"), proxy);
    assert.equal(xff(""), proxy);
    assert.equal(xff("198.51.100.1,"), proxy);
  });

  it("is the proxy itself when it sent no header", () => {
    assert.equal(resolve(proxy, {}), proxy);
    assert.equal(resolve(proxy, { forwarded: "for=198.51.100.1" }), proxy, "only its header");
  });
});

describe("client address: forwarded (RFC 7239)", () => {
  const resolve = behind("forwarded");
  const fwd = (value: string | string[], peer = proxy) => resolve(peer, { forwarded: value });

  it("reads the for= parameters of the elements, from the right", () => {
    assert.equal(fwd("for=192.0.2.60;proto=http;by=203.0.113.43"), "192.0.2.60");
    assert.equal(fwd("for=192.0.2.43, for=198.51.100.17;by=10.0.0.3"), "198.51.100.17");
    assert.equal(fwd("for=198.51.100.17, for=10.0.0.4"), "198.51.100.17");
    assert.equal(fwd(["for=192.0.2.43", "for=198.51.100.17, for=10.0.0.4"]), "198.51.100.17");
  });

  it("takes names in any case, quoted values, IPv6 in brackets and ports", () => {
    assert.equal(fwd('For="[2001:db8:cafe::17]:4711"'), "2001:db8:cafe::17");
    assert.equal(fwd('for="192.0.2.60:8080" ; proto=https'), "192.0.2.60");
    assert.equal(fwd('proto=https;FOR="198.51.100.9";host=example.com'), "198.51.100.9");
    assert.equal(fwd('for="[fd00::1]", for=10.0.0.5'), "fd00::1", "all trusted: leftmost");
  });

  it("keeps commas and escaped quotes inside quoted strings", () => {
    assert.equal(fwd('for=198.51.100.1;ext="a, for=6.6.6.6"'), "198.51.100.1");
    assert.equal(fwd('for=198.51.100.1;ext="a\\", for=6.6.6.6"'), "198.51.100.1");
    assert.equal(fwd('for=198.51.100.1;ext="a\\\\", for=10.0.0.9'), "198.51.100.1");
    assert.equal(fwd('for="198.51.100.1\\"x"'), proxy, "an escaped quote is no address");
  });

  it("is an obfuscated identifier when the proxy gives one", () => {
    assert.equal(fwd('for="_gazonk"'), "_gazonk");
    assert.equal(fwd("for=_hidden:_port, for=10.0.0.8"), "_hidden");
  });

  it("stops at the proxy that wrote for=unknown, no for=, or anything malformed", () => {
    for (const bad of [
      "for=unknown",
      "proto=http",
      "for",
      'for="198.51.100.1',
      'for="198.51.100.1"junk',
      "for=[2001:db8::1]x",
      "by=1.2.3.4 for=198.51.100.2",
      "f o r=198.51.100.3",
    ]) {
      assert.equal(fwd(`for=198.51.100.1, ${bad}, for=10.0.0.9`), "10.0.0.9", bad);
    }
    assert.equal(fwd('for="198.51.100.1'), proxy, "an unterminated quote");
  });

  it("ignores x-forwarded-for, which the proxy may pass on from the client", () => {
    assert.equal(resolve(proxy, { "x-forwarded-for": "198.51.100.1" }), proxy);
  });
});

describe("client address: the parts", () => {
  it("splits from the right, quotes respected only where asked", () => {
    assert.deepEqual(hopsFromTheRight("a, b,c", false), ["c", " b", "a"]);
    assert.deepEqual(hopsFromTheRight('a="x,y", b', true), [" b", 'a="x,y"']);
    assert.deepEqual(hopsFromTheRight('a="x,y", b', false), [" b", 'y"', 'a="x']);
    assert.deepEqual(hopsFromTheRight("", false), [""]);
  });

  it("unquotes for= and names addresses", () => {
    assert.equal(forwardedFor('proto=http; for="[::1]:80"'), "[::1]:80");
    assert.equal(forwardedFor("by=x"), "");
    assert.equal(addressOf("[::1]:80"), "::1");
    assert.equal(addressOf("192.0.2.1:65535"), "192.0.2.1");
    assert.equal(addressOf("192.0.2.1:123456"), undefined);
    assert.equal(addressOf("_x".padEnd(65, "y")), undefined, "an identifier of 64 characters");
    assert.equal(addressOf("unknown"), undefined);
  });
});

describe("client address: trusted proxy ranges", () => {
  it("takes addresses and CIDR ranges of both families", () => {
    for (const good of [
      "10.0.0.0/8",
      "10.0.0.7",
      "0.0.0.0/0",
      "fd00::/8",
      "::1",
      "::/0",
      "::ffff:10.0.0.0/104",
    ])
      assert.equal(cidrProblem(good), undefined, good);
  });

  it("names what is wrong with a bad one", () => {
    assert.equal(
      cidrProblem("10.0.0.0/33"),
      '"10.0.0.0/33" is not an address or CIDR range such as 10.0.0.0/8 or fd00::/8: the prefix length must be 0 to 32',
    );
    assert.match(cidrProblem("fd00::/129") ?? "", /prefix length must be 0 to 128$/);
    for (const bad of [
      "",
      "nonsense",
      "10.0.0/8",
      "10.0.0.0/",
      "10.0.0.0/-1",
      "10.0.0.0/8/8",
      "10.0.0.0/1e1",
      "fe80::1%eth0",
      "10.0.0.0 /8",
    ])
      assert.match(cidrProblem(bad) ?? "", /is not an address or CIDR range/, JSON.stringify(bad));
  });

  it("refuses to build a resolver with a bad range", () => {
    assert.throws(
      () => createClientAddressResolver({ trustedProxies: ["10.0.0.0/8", "10.0.0.0/40"] }),
      /^Error: trusted proxies: "10\.0\.0\.0\/40" is not an address or CIDR range/,
    );
  });
});

describe("client address: hostile headers", () => {
  const forHeaders = (["x-forwarded-for", "forwarded"] as const).map((header) => ({
    header,
    resolve: behind(header),
  }));

  it("reads no further than 16 hops from the right", () => {
    const trustedHops = Array.from({ length: 40 }, (_, i) => `10.0.0.${i + 10}`);
    const value = ["198.51.100.1", ...trustedHops].join(", ");
    // Past the limit, the last hop read stands for the client; the made-up left is never reached.
    assert.equal(behind()(proxy, { "x-forwarded-for": value }), "10.0.0.34");
  });

  it("reads no further than 2048 characters from the right", () => {
    const resolve = behind();
    const far = `198.51.100.1,${" ".repeat(3000)}10.0.0.9`;
    assert.equal(resolve(proxy, { "x-forwarded-for": far }), proxy, "a hop cut by the limit");
    const long = `${"9".repeat(1 << 20)}, 198.51.100.1`;
    assert.equal(resolve(proxy, { "x-forwarded-for": long }), "198.51.100.1");
    const quoted = `for="${"a".repeat(1 << 20)}`;
    assert.equal(behind("forwarded")(proxy, { forwarded: quoted }), proxy);
  });

  it("never throws, and answers the peer, an address or an identifier, for random input", () => {
    // A fixed seed: the same inputs on every run.
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const pieces = [
      '"',
      "\\",
      ",",
      ";",
      "=",
      "for",
      "For=",
      "[",
      "]",
      ":",
      "_",
      " ",
      "%",
      "10.0.0.1",
      "fd00::1",
      "198.51.100.7",
      "::ffff:",
      "unknown",
      "\t",
      "é",
      "\0",
    ];
    for (let n = 0; n < 3000; n++) {
      let value = "";
      const length = Math.floor(random() * 30);
      for (let i = 0; i < length; i++) value += pieces[Math.floor(random() * pieces.length)];
      for (const { header, resolve } of forHeaders) {
        const client = resolve(proxy, { [header]: value });
        assert.ok(
          client === proxy || isIP(client) !== 0 || /^_[A-Za-z0-9._-]{1,63}$/.test(client),
          `${header}: ${JSON.stringify(value)} → ${JSON.stringify(client)}`,
        );
      }
    }
  });
});
