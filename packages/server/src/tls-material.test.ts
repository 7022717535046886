import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { writeDevCerts } from "./dev-certs.ts";
import { checkTlsMaterial, readTlsMaterial, TlsMaterialError } from "./tls-material.ts";

const dir = mkdtempSync(join(tmpdir(), "keel-tls-material-"));
const files = {
  cert: join(dir, "server.pem"),
  key: join(dir, "server-key.pem"),
  clientCa: join(dir, "ca.pem"),
};
const pem = (name: string) => readFileSync(join(dir, name));
before(() => writeDevCerts({ dir }));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("TLS material", () => {
  it("reads a certificate, its key and a client CA that go together", async () => {
    const material = await readTlsMaterial(files);
    assert.deepEqual(material.cert, pem("server.pem"));
    assert.deepEqual(material.clientCa, pem("ca.pem"));
  });

  it("names the file that does not parse, or the key that is not the certificate's", () => {
    const good = { cert: pem("server.pem"), key: pem("server-key.pem"), clientCa: pem("ca.pem") };
    const cases: [Partial<typeof good>, RegExp][] = [
      [
        { cert: Buffer.from("-----BEGIN CERTIFICATE-----\nnot\n") },
        /server\.pem holds no PEM certificate/,
      ],
      [{ key: Buffer.from("garbage") }, /server-key\.pem holds no unencrypted PEM private key/],
      [
        { key: pem("client-key.pem") },
        /the key in .*server-key\.pem is not the key of the certificate in .*server\.pem/,
      ],
      [{ clientCa: Buffer.from("") }, /ca\.pem holds no PEM certificate/],
    ];
    for (const [change, message] of cases) {
      assert.throws(
        () => checkTlsMaterial({ ...good, ...change }, files),
        (err: unknown) => err instanceof TlsMaterialError && message.test(err.message),
      );
    }
  });

  it("lets a missing file's own error through, naming the path", async () => {
    await assert.rejects(readTlsMaterial({ ...files, key: join(dir, "missing.pem") }), {
      code: "ENOENT",
      path: join(dir, "missing.pem"),
    });
  });
});
