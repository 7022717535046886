import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createSecureContext } from "node:tls";

/** Where the server's TLS files are: PEM certificate (chain), private key, client CA. */
export interface TlsFiles {
  cert: string;
  key: string;
  clientCa?: string | undefined;
}

/** The contents of `TlsFiles`, checked: what the listener serves. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  clientCa?: Buffer;
}

/** What a log line says about the certificate being served. */
export interface CertificateSummary {
  serialNumber: string;
  subject: string;
  validTo: string;
}

/** A TLS file that cannot be served: says which file and what is wrong with it. */
export class TlsMaterialError extends Error {
  override readonly name = "TlsMaterialError";
}

/**
 * Reads the certificate, key and client CA and checks that they can be served together: the
 * certificate parses, the key parses and is the certificate's own, the client CA parses, and
 * OpenSSL builds a context from them. Anything else throws a `TlsMaterialError` naming the file;
 * a file that cannot be read, Node's error.
 */
export async function readTlsMaterial(files: TlsFiles): Promise<TlsMaterial> {
  // A file that cannot be read throws Node's own error, naming the path (see describeStartError).
  const material: TlsMaterial = {
    cert: await readFile(files.cert),
    key: await readFile(files.key),
    ...(files.clientCa === undefined ? {} : { clientCa: await readFile(files.clientCa) }),
  };
  checkTlsMaterial(material, files);
  return material;
}

/** Throws a `TlsMaterialError` unless `material` can be served (see `readTlsMaterial`). */
export function checkTlsMaterial(material: TlsMaterial, files: TlsFiles): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(material.cert);
  } catch (err) {
    throw new TlsMaterialError(`${files.cert} holds no PEM certificate`, { cause: err });
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(material.key);
  } catch (err) {
    throw new TlsMaterialError(`${files.key} holds no unencrypted PEM private key`, { cause: err });
  }
  if (!cert.checkPrivateKey(key)) {
    throw new TlsMaterialError(
      `the key in ${files.key} is not the key of the certificate in ${files.cert}`,
    );
  }
  if (material.clientCa !== undefined) {
    try {
      new X509Certificate(material.clientCa);
    } catch (err) {
      throw new TlsMaterialError(`${files.clientCa} holds no PEM certificate`, { cause: err });
    }
  }
  try {
    createSecureContext({
      cert: material.cert,
      key: material.key,
      ...(material.clientCa === undefined ? {} : { ca: material.clientCa }),
    });
  } catch (err) {
    throw new TlsMaterialError(
      `${files.cert}, ${files.key}${files.clientCa === undefined ? "" : ` and ${files.clientCa}`} cannot be served together: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** The serial number, subject and expiry of the (first) certificate in `pem`. */
export function summarizeCertificate(pem: Buffer): CertificateSummary {
  const cert = new X509Certificate(pem);
  return { serialNumber: cert.serialNumber, subject: cert.subject, validTo: cert.validTo };
}
