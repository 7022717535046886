import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseTarget } from "./target.ts";

describe("parseTarget", () => {
  it("reads URLs and gRPC dns: targets", () => {
    assert.deepEqual(parseTarget("http://10.0.0.1:9090"), {
      kind: "static",
      url: "http://10.0.0.1:9090",
    });
    assert.deepEqual(parseTarget("dns:///users.internal:9090"), {
      kind: "dns",
      target: "dns:///users.internal:9090",
      host: "users.internal",
      port: 9090,
    });
    assert.deepEqual(parseTarget("dns:users.internal:9090"), {
      kind: "dns",
      target: "dns:users.internal:9090",
      host: "users.internal",
      port: 9090,
    });
    assert.deepEqual(parseTarget("dns://10.0.0.2:53/[fd00::1]:9090"), {
      kind: "dns",
      target: "dns://10.0.0.2:53/[fd00::1]:9090",
      host: "fd00::1",
      port: 9090,
      server: "10.0.0.2:53",
    });
  });

  it("says what is wrong with a bad entry", () => {
    assert.throws(() => parseTarget("dns:///users.internal"), /use dns:\/\/\/host:port/);
    assert.throws(() => parseTarget("dns:///users.internal:0"), /use dns:\/\/\/host:port/);
    assert.throws(() => parseTarget("dns://10.0.0.2"), /not a DNS target/);
    assert.throws(() => parseTarget("users.internal:9090"), /scheme must be http, https or dns/);
    assert.throws(() => parseTarget("not a url"), /is not a URL/);
    assert.throws(() => parseTarget("ftp://x:1"), /scheme must be http, https or dns/);
  });
});
