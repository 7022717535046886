import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { errors } from "jose";
import { createHs256Verifier, signHs256 } from "./hs256.ts";
import { createHs256Keyring, hs256KeyId } from "./hs256-keyring.ts";

const key = (name: string) =>
  new TextEncoder().encode(`${name} key, at least thirty-two bytes long`);
const [a, b, c] = [key("a"), key("b"), key("c")];
const claims = () => ({
  iss: "keel",
  aud: "keel",
  sub: "1",
  exp: Math.floor(Date.now() / 1000) + 60,
});
const options = { issuer: "keel", audience: "keel", clockToleranceSeconds: 0 };
const headerOf = (token: string) =>
  JSON.parse(Buffer.from(token.split(".")[0] ?? "", "base64url").toString()) as Record<
    string,
    unknown
  >;

describe("HS256 keyring", () => {
  it("signs with the current key and its kid, and verifies by kid with every accepted key", () => {
    const keyring = createHs256Keyring({ current: b, accepted: [a] });
    const verify = createHs256Verifier(keyring, options);
    const token = signHs256(claims(), keyring.current);
    assert.deepEqual(headerOf(token), { alg: "HS256", typ: "JWT", kid: hs256KeyId(b) });
    assert.equal(verify(token).sub, "1");
    const old = signHs256(claims(), createHs256Keyring({ current: a }).current);
    assert.equal(headerOf(old).kid, hs256KeyId(a));
    assert.equal(verify(old).sub, "1");
    // A token without a kid (signed before keys had ids) is tried with each accepted key.
    assert.equal(verify(signHs256(claims(), a)).sub, "1");
    assert.throws(() => verify(signHs256(claims(), c)), errors.JWSSignatureVerificationFailed);
  });

  it("refuses a kid it does not hold, a kid that is not a string, and a key passed off under another's kid", () => {
    const keyring = createHs256Keyring({ current: a });
    const verify = createHs256Verifier(keyring, options);
    const unknown = signHs256(claims(), createHs256Keyring({ current: c }).current);
    assert.throws(() => verify(unknown), errors.JWSSignatureVerificationFailed);
    const forged = signHs256(claims(), {
      kid: hs256KeyId(a),
      key: createHs256Keyring({ current: c }).current.key,
    });
    assert.throws(() => verify(forged), errors.JWSSignatureVerificationFailed);
    const [, payload, signature] = signHs256(claims(), a).split(".");
    const numeric = Buffer.from(JSON.stringify({ alg: "HS256", kid: 7 })).toString("base64url");
    assert.throws(() => verify(`${numeric}.${payload}.${signature}`), errors.JWSInvalid);
  });

  it("after an update signs with the new key and refuses the removed one's tokens", () => {
    const keyring = createHs256Keyring({ current: a });
    const verify = createHs256Verifier(keyring, options);
    const old = signHs256(claims(), keyring.current);
    let updates = 0;
    keyring.onUpdate(() => updates++);
    keyring.update({ current: b, accepted: [a] });
    assert.equal(keyring.current.kid, hs256KeyId(b));
    assert.equal(verify(old).sub, "1");
    keyring.update({ current: b });
    assert.throws(() => verify(old), errors.JWSSignatureVerificationFailed);
    assert.equal(updates, 2);
  });

  it("refuses a key shorter than 32 bytes and more than 8 accepted keys, keeping the keys it had", () => {
    const keyring = createHs256Keyring({ current: a });
    assert.throws(() => keyring.update({ current: new Uint8Array(31) }), /at least 32 bytes/);
    assert.throws(
      () =>
        keyring.update({ current: a, accepted: Array.from({ length: 9 }, (_, i) => key(`k${i}`)) }),
      /at most 8 accepted/,
    );
    assert.equal(keyring.current.kid, hs256KeyId(a));
  });
});
