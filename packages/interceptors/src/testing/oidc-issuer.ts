import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  type CryptoKey,
  exportJWK,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  SignJWT,
} from "jose";

/** A client the test issuer gives tokens to (client credentials grant). */
export interface TestIssuerClient {
  secret: string;
  /** What the `roles` claim of its tokens holds. */
  roles: string[];
}

export interface TestIssuerOptions {
  /** The signing algorithm of its keys. Default RS256. */
  alg?: "RS256" | "ES256";
  /** The `aud` of the tokens its token endpoint issues. Default "keel". */
  audience?: string;
  /** Clients the token endpoint knows, by client id. Default none. */
  clients?: Record<string, TestIssuerClient>;
  /** The lifetime of issued tokens, in seconds. Default 300. */
  tokenTtlSeconds?: number;
}

/** A small OpenID Connect issuer on a real HTTP server, for tests; see `startTestIssuer`. */
export interface TestIssuer {
  /** The issuer URL (`iss` of its tokens): `http://127.0.0.1:PORT/realms/test`. */
  readonly url: string;
  /** Requests its discovery document, key set and token endpoint have had. */
  readonly requests: { discovery: number; jwks: number; token: number };
  /** The `kid` of the key that signs now. */
  readonly kid: string;
  /** A token with `claims` (iss, iat and a 5-minute exp added unless given), signed by the current key. */
  sign(claims: JWTPayload, header?: { kid?: string }): Promise<string>;
  /**
   * Makes a new key the signing key. The key set then lists the new key, and the previous ones
   * too when `keepPrevious` (default false).
   */
  rotate(options?: { keepPrevious?: boolean }): Promise<void>;
  /** A token signed by a key that is never in the key set, with the given `kid`. */
  signWithUnknownKey(claims: JWTPayload, kid: string): Promise<string>;
  close(): Promise<void>;
}

interface Key {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

/**
 * Starts an issuer serving `/realms/test/.well-known/openid-configuration`, its key set at
 * `/realms/test/jwks` and a client credentials token endpoint at `/realms/test/token` (client
 * authentication by HTTP Basic or by `client_id` and `client_secret` in the form), on port 0.
 */
export async function startTestIssuer(options: TestIssuerOptions = {}): Promise<TestIssuer> {
  const alg = options.alg ?? "RS256";
  const audience = options.audience ?? "keel";
  const ttl = options.tokenTtlSeconds ?? 300;
  const requests = { discovery: 0, jwks: 0, token: 0 };
  let serial = 0;
  const newKey = async (): Promise<Key> => {
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
    const kid = `key-${++serial}`;
    return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
  };
  let current = await newKey();
  let published: Key[] = [current];
  let url = "";
  // Never published: what a forger signs with.
  let stray: Key | undefined;

  const sign = (claims: JWTPayload, key: Key, kid = key.kid) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ iss: url, iat: now, exp: now + ttl, ...claims })
      .setProtectedHeader({ alg, kid, typ: "at+jwt" })
      .sign(key.privateKey);
  };
  const json = (res: ServerResponse, status: number, body: unknown) =>
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  const issueToken = async (req: IncomingMessage, res: ServerResponse) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    const form = new URLSearchParams(body);
    let clientId = form.get("client_id");
    let clientSecret = form.get("client_secret");
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    if (basic !== undefined) {
      const [id, secret] = Buffer.from(basic, "base64").toString().split(":");
      clientId = decodeURIComponent(id ?? "");
      clientSecret = decodeURIComponent(secret ?? "");
    }
    if (form.get("grant_type") !== "client_credentials") {
      return json(res, 400, { error: "unsupported_grant_type" });
    }
    const client = clientId === null ? undefined : options.clients?.[clientId];
    if (client === undefined || client.secret !== clientSecret) {
      return json(res, 401, { error: "invalid_client" });
    }
    const token = await sign(
      {
        sub: `service-${clientId}`,
        aud: audience,
        roles: client.roles,
        azp: clientId,
        jti: randomUUID(),
      },
      current,
    );
    return json(res, 200, { access_token: token, token_type: "Bearer", expires_in: ttl });
  };

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (path === "/realms/test/.well-known/openid-configuration") {
      requests.discovery++;
      json(res, 200, {
        issuer: url,
        jwks_uri: `${url}/jwks`,
        token_endpoint: `${url}/token`,
        grant_types_supported: ["client_credentials"],
      });
    } else if (path === "/realms/test/jwks") {
      requests.jwks++;
      json(res, 200, { keys: published.map((k) => k.jwk) });
    } else if (path === "/realms/test/token" && req.method === "POST") {
      requests.token++;
      issueToken(req, res).catch(() => json(res, 500, { error: "server_error" }));
    } else {
      json(res, 404, { error: "not_found" });
    }
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/realms/test`;

  return {
    url,
    requests,
    get kid() {
      return current.kid;
    },
    sign: (claims, header) => sign(claims, current, header?.kid),
    async rotate({ keepPrevious = false } = {}) {
      current = await newKey();
      published = keepPrevious ? [...published, current] : [current];
    },
    async signWithUnknownKey(claims, kid) {
      stray ??= await newKey();
      return sign(claims, stray, kid);
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
