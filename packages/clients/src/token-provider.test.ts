import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { createTokenProvider, type TokenPair } from "./token-provider.ts";

/** A fake issuer: numbered tokens valid for 10 minutes of the fake clock. */
function issuer(clock: { now: number }) {
  let n = 0;
  const log: string[] = [];
  const pair = (): TokenPair => {
    n++;
    return {
      accessToken: `a${n}`,
      refreshToken: `r${n}`,
      accessTokenExpiresAt: timestampFromMs(clock.now + 600_000),
    };
  };
  return {
    log,
    login: async () => {
      log.push("login");
      return pair();
    },
    refresh: async (refreshToken: string) => {
      log.push(`refresh ${refreshToken}`);
      if (refreshToken === "r2")
        throw new ConnectError("refresh token was already used", Code.Unauthenticated);
      return pair();
    },
  };
}

describe("token provider", () => {
  it("logs in once, reuses the token, and refreshes it shortly before it expires", async () => {
    const clock = { now: 1_000_000 };
    const fake = issuer(clock);
    const token = createTokenProvider({ ...fake, now: () => clock.now });
    assert.equal(await token(), "a1");
    clock.now += 500_000;
    assert.equal(await token(), "a1");
    clock.now += 50_000; // 50 s left: inside the default 60 s margin
    assert.equal(await token(), "a2");
    assert.deepEqual(fake.log, ["login", "refresh r1"]);
  });

  it("shares one renewal between concurrent calls", async () => {
    const clock = { now: 0 };
    const fake = issuer(clock);
    const token = createTokenProvider({ ...fake, now: () => clock.now });
    assert.deepEqual(await Promise.all([token(), token(), token()]), ["a1", "a1", "a1"]);
    assert.deepEqual(fake.log, ["login"]);
  });

  it("logs in again when the refresh token is refused", async () => {
    const clock = { now: 0 };
    const fake = issuer(clock);
    const token = createTokenProvider({ ...fake, now: () => clock.now, refreshBeforeMs: 1000 });
    await token(); // a1
    clock.now += 600_000;
    assert.equal(await token(), "a2"); // refreshed with r1
    clock.now += 600_000;
    assert.equal(await token(), "a3"); // r2 refused → login
    assert.deepEqual(fake.log, ["login", "refresh r1", "refresh r2", "login"]);
  });

  it("passes a failed login on to the caller, and tries again next time", async () => {
    let fail = true;
    const token = createTokenProvider({
      login: async () => {
        if (fail) throw new ConnectError("invalid username or password", Code.Unauthenticated);
        return { accessToken: "ok", refreshToken: "r" };
      },
      refresh: async () => ({ accessToken: "never", refreshToken: "r" }),
    });
    await assert.rejects(token(), /invalid username or password/);
    fail = false;
    assert.equal(await token(), "ok");
  });
});
