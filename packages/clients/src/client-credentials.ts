import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { createBearerTokenInterceptor } from "./bearer-token.ts";

export interface ClientCredentialsOptions {
  /**
   * The OpenID Connect issuer URL: the token endpoint is read from its discovery document
   * (`<issuer>/.well-known/openid-configuration`). Give this or `tokenEndpoint`.
   */
  issuer?: string;
  /** The OAuth 2.0 token endpoint, for a provider without a discovery document. */
  tokenEndpoint?: string;
  clientId: string;
  clientSecret: string;
  /**
   * How the client authenticates to the token endpoint: `basic` (HTTP Basic,
   * `client_secret_basic`) or `post` (form fields, `client_secret_post`). Default `basic`.
   */
  authMethod?: "basic" | "post";
  /** The scopes to ask for. Default none (the provider's default). */
  scope?: string | readonly string[];
  /** An `audience` parameter, for providers that take one (Auth0 and others). Default none. */
  audience?: string;
  /**
   * Fetch a new token this long before the current one expires, in ms; at most half the token's
   * lifetime. Default 30000.
   */
  refreshBeforeMs?: number;
  /** How long discovery and token requests may take, in ms. Default 10000. */
  timeoutMs?: number;
  /** The clock, for tests. Default `Date.now`. */
  now?: () => number;
}

/**
 * A `token` source for keel's clients with an OAuth 2.0 client credentials grant (see
 * `createClientCredentialsProvider`): call it for the current access token.
 */
export interface ClientCredentialsProvider {
  (): Promise<string>;
  /** Forgets the cached token: the next call fetches a new one. */
  invalidate(): void;
  /**
   * Sends the token as `authorization: Bearer …` and, when a call is refused with
   * UNAUTHENTICATED, forgets it, so that the next call fetches a new one.
   */
  readonly interceptor: Interceptor;
}

interface CachedToken {
  accessToken: string;
  /** When to fetch the next one, in ms since the epoch. */
  renewAt: number;
}

/**
 * Service-to-service tokens from an OAuth 2.0 / OpenID Connect provider: on first use it reads
 * the token endpoint from the issuer's discovery document, asks it for a token with the client's
 * id and secret (`grant_type=client_credentials`), and keeps the token until shortly before it
 * expires (`expires_in`). Concurrent calls share one request; a failed request is not cached, the
 * next call tries again. A provider that refuses the client (HTTP 400 or 401) → UNAUTHENTICATED,
 * one that cannot be reached or fails → UNAVAILABLE, each saying which endpoint and why.
 *
 * ```ts
 * const token = createClientCredentialsProvider({ issuer, clientId, clientSecret });
 * const users = createUserClient({ baseUrl, interceptors: [token.interceptor] });
 * ```
 */
export function createClientCredentialsProvider(
  options: ClientCredentialsOptions,
): ClientCredentialsProvider {
  if ((options.issuer === undefined) === (options.tokenEndpoint === undefined)) {
    throw new Error("give the issuer (for its discovery document) or the token endpoint");
  }
  const now = options.now ?? Date.now;
  const margin = options.refreshBeforeMs ?? 30_000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  let endpoint: Promise<string> | undefined =
    options.tokenEndpoint === undefined ? undefined : Promise.resolve(options.tokenEndpoint);
  let current: CachedToken | undefined;
  let fetching: Promise<CachedToken> | undefined;

  const post = async (url: string, init: RequestInit): Promise<Record<string, unknown>> => {
    let response: Response;
    let body: unknown;
    try {
      response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
      body = await response.json().catch(() => undefined);
    } catch (err) {
      throw new ConnectError(
        `cannot reach ${url}: ${(err as Error).message}`,
        Code.Unavailable,
        undefined,
        undefined,
        err,
      );
    }
    const fields =
      typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {};
    if (response.ok) return fields;
    const reason = [fields.error, fields.error_description]
      .filter((part) => typeof part === "string")
      .join(": ")
      .slice(0, 200);
    throw new ConnectError(
      `${url} answered HTTP ${response.status}${reason === "" ? "" : ` (${reason})`}`,
      response.status === 400 || response.status === 401 ? Code.Unauthenticated : Code.Unavailable,
    );
  };

  const tokenEndpoint = (): Promise<string> => {
    endpoint ??= post(
      `${(options.issuer ?? "").replace(/\/$/, "")}/.well-known/openid-configuration`,
      {
        headers: { accept: "application/json" },
      },
    ).then(
      (document) => {
        if (typeof document.token_endpoint !== "string") {
          throw new ConnectError(
            `the discovery document of ${options.issuer} names no token_endpoint`,
            Code.Unavailable,
          );
        }
        return document.token_endpoint;
      },
      (err: unknown) => {
        // Not cached: the next call reads the document again.
        endpoint = undefined;
        throw err;
      },
    );
    return endpoint;
  };

  const fetchToken = async (): Promise<CachedToken> => {
    const url = await tokenEndpoint();
    const form = new URLSearchParams({ grant_type: "client_credentials" });
    const headers: Record<string, string> = {
      accept: "application/json",
      "content-type": "application/x-www-form-urlencoded",
    };
    if (options.authMethod === "post") {
      form.set("client_id", options.clientId);
      form.set("client_secret", options.clientSecret);
    } else {
      // RFC 6749 section 2.3.1: both parts form-encoded before they are joined.
      const pair = `${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`;
      headers.authorization = `Basic ${Buffer.from(pair).toString("base64")}`;
    }
    const scope = typeof options.scope === "string" ? options.scope : options.scope?.join(" ");
    if (scope !== undefined && scope !== "") form.set("scope", scope);
    if (options.audience !== undefined) form.set("audience", options.audience);
    const answer = await post(url, { method: "POST", headers, body: form.toString() });
    if (typeof answer.access_token !== "string" || answer.access_token === "") {
      throw new ConnectError(`${url} answered without an access_token`, Code.Unavailable);
    }
    const lifetimeMs =
      typeof answer.expires_in === "number" && answer.expires_in > 0
        ? answer.expires_in * 1000
        : 60_000;
    return {
      accessToken: answer.access_token,
      renewAt: now() + lifetimeMs - Math.min(margin, lifetimeMs / 2),
    };
  };

  const provider = async (): Promise<string> => {
    if (current !== undefined && now() < current.renewAt) return current.accessToken;
    fetching ??= fetchToken().finally(() => {
      fetching = undefined;
    });
    current = await fetching;
    return current.accessToken;
  };
  const invalidate = () => {
    current = undefined;
  };
  const bearer = createBearerTokenInterceptor(provider);
  const interceptor: Interceptor = (next) => {
    const call = bearer(next);
    return async (req) => {
      try {
        return await call(req);
      } catch (err) {
        if (ConnectError.from(err).code === Code.Unauthenticated) invalidate();
        throw err;
      }
    };
  };
  return Object.assign(provider, { invalidate, interceptor });
}
