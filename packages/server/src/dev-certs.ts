// @peculiar/x509 needs the Reflect metadata API; this module is loaded only by the certs command.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";

// WebCrypto as x509 expects it (its types come from the DOM library, which Node code does not load).
type X509Crypto = Parameters<typeof x509.cryptoProvider.set>[0];
type Key = Parameters<typeof x509.SubjectKeyIdentifierExtension.create>[0];
type KeyPair = { publicKey: Key; privateKey: Key };
x509.cryptoProvider.set(webcrypto as unknown as X509Crypto);

const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
const day = 24 * 3600 * 1000;

export interface DevCertsOptions {
  /** Where to write ca.pem, server.pem, server-key.pem, client.pem and client-key.pem. */
  dir: string;
  /** Names and addresses the server certificate is valid for. Default localhost, 127.0.0.1, ::1. */
  hosts?: string[];
  /** Days the certificates are valid. Default 365. */
  days?: number;
}

/**
 * Writes a development certificate authority, a server certificate it signed (for TLS) and a
 * client certificate it signed (for mutual TLS), all ECDSA P-256. Private keys are written 0600.
 * For development and tests only: production certificates come from a real CA.
 */
export async function writeDevCerts(options: DevCertsOptions): Promise<string[]> {
  const hosts = options.hosts ?? ["localhost", "127.0.0.1", "::1"];
  const notBefore = new Date(Date.now() - day);
  const notAfter = new Date(Date.now() + (options.days ?? 365) * day);
  const caKeys = await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: "CN=keel development CA",
    notBefore,
    notAfter,
    keys: caKeys as unknown as KeyPair,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey as unknown as Key),
    ],
  });
  const leaf = async (name: string, usage: string, extra: x509.Extension[]) => {
    const keys = await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `CN=${name}`,
      issuer: ca.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey as unknown as Key,
      signingKey: caKeys.privateKey as unknown as Key,
      signingAlgorithm: algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([usage]),
        await x509.AuthorityKeyIdentifierExtension.create(ca),
        ...extra,
      ],
    });
    const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey);
    return { cert: cert.toString("pem"), key: x509.PemConverter.encode(pkcs8, "PRIVATE KEY") };
  };
  const server = await leaf("keel server", x509.ExtendedKeyUsage.serverAuth, [
    new x509.SubjectAlternativeNameExtension(
      hosts.map((host) =>
        isIP(host) ? { type: "ip" as const, value: host } : { type: "dns" as const, value: host },
      ),
    ),
  ]);
  const client = await leaf("keel client", x509.ExtendedKeyUsage.clientAuth, []);
  await mkdir(options.dir, { recursive: true });
  const files: [string, string, number][] = [
    ["ca.pem", ca.toString("pem"), 0o644],
    ["server.pem", server.cert, 0o644],
    ["server-key.pem", server.key, 0o600],
    ["client.pem", client.cert, 0o644],
    ["client-key.pem", client.key, 0o600],
  ];
  for (const [name, content, mode] of files)
    await writeFile(join(options.dir, name), `${content}\n`, { mode });
  return files.map(([name]) => join(options.dir, name));
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
    .toString("hex")
    .replace(/^[89a-f]/, "1");
}
