import { createReadStream, rmSync, statSync } from "node:fs";
import type * as http from "node:http";
import { dirname } from "node:path";
import { createHs256Verifier, type Hs256Keyring } from "@keel/interceptors";
import { type ProfileKind, ProfilerBusyError, profileExtensions } from "@keel/observability";

/** A profile to take: of this process, or of a cluster worker (`worker`, when asked for). */
export interface ProfileRequest {
  kind: ProfileKind;
  seconds: number;
  worker: number | undefined;
  signal: AbortSignal;
}

/** A profile taken: the file holding it (removed once sent) and the worker it is of, if any. */
export interface TakenProfile {
  path: string;
  worker?: number;
}

/** Refusals that name what to fix, answered with their HTTP status. */
export class ProfileRequestError extends Error {
  override readonly name = "ProfileRequestError";
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export interface ProfileEndpointOptions {
  /**
   * The HS256 key (or keyring), issuer and audience access tokens are verified with (role
   * `admin` needed).
   */
  tokens: { secret: Uint8Array | Hs256Keyring; issuer: string; audience: string };
  /** The longest `seconds` accepted. */
  maxSeconds: number;
  /** Takes the profile: in this process, or in a cluster worker. */
  take: (request: ProfileRequest) => Promise<TakenProfile>;
}

const prefix = "/debug/profile/";
const kinds = new Set<string>(Object.keys(profileExtensions));

/**
 * The admin port's profiling routes, for administrators only: `GET /debug/profile/cpu?seconds=N`
 * (a `.cpuprofile`), `/debug/profile/heap-sampling?seconds=N` (a `.heapprofile`) and
 * `/debug/profile/heap-snapshot` (a `.heapsnapshot`), each with `Authorization: Bearer <access
 * token with role admin>` and, in cluster mode, `worker=ID`. The answer is the file, as an
 * attachment, with `keel-worker` saying which worker's it is in cluster mode.
 * Returns a handler that answers and returns true for these paths, false for any other.
 */
export function createProfileEndpoint(
  options: ProfileEndpointOptions,
): (req: http.IncomingMessage, res: http.ServerResponse) => boolean {
  const verify = createHs256Verifier(options.tokens.secret, {
    issuer: options.tokens.issuer,
    audience: options.tokens.audience,
    clockToleranceSeconds: 5,
    requiredClaims: ["exp", "sub"],
  });
  const authorize = (header: string | undefined) => {
    const token = /^Bearer ([^\s]+)$/i.exec(header ?? "")?.[1];
    if (token === undefined) {
      throw new ProfileRequestError(401, "profiling needs an Authorization: Bearer admin token");
    }
    let claims: ReturnType<typeof verify>;
    try {
      claims = verify(token);
    } catch {
      throw new ProfileRequestError(401, "the token is invalid or expired");
    }
    const roles = Array.isArray(claims.roles) ? claims.roles : [];
    if (claims.typ !== "access" || !roles.includes("admin")) {
      throw new ProfileRequestError(403, "profiling is for access tokens with the admin role");
    }
  };
  const parse = (url: URL): Omit<ProfileRequest, "signal"> => {
    const kind = url.pathname.slice(prefix.length);
    if (!kinds.has(kind)) {
      throw new ProfileRequestError(
        404,
        `no profile ${JSON.stringify(kind)}: try ${[...kinds].map((k) => prefix + k).join(", ")}`,
      );
    }
    const text = url.searchParams.get("seconds") ?? String(Math.min(30, options.maxSeconds));
    const seconds = Number(text);
    if (!/^[0-9]{1,6}$/.test(text) || seconds < 1 || seconds > options.maxSeconds) {
      throw new ProfileRequestError(
        400,
        `seconds must be a whole number from 1 to ${options.maxSeconds}`,
      );
    }
    const workerText = url.searchParams.get("worker");
    if (workerText !== null && !/^[1-9][0-9]{0,5}$/.test(workerText)) {
      throw new ProfileRequestError(400, "worker must be a worker id (a positive number)");
    }
    return {
      kind: kind as ProfileKind,
      seconds,
      worker: workerText === null ? undefined : Number(workerText),
    };
  };

  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://admin");
    if (!url.pathname.startsWith(prefix)) return false;
    const controller = new AbortController();
    // The client going away before the answer stops the recording.
    res.once("close", () => controller.abort());
    (async () => {
      if (req.method !== "GET") throw new ProfileRequestError(405, "profiles are taken with GET");
      authorize(req.headers.authorization);
      const request = { ...parse(url), signal: controller.signal };
      const taken = await options.take(request);
      send(res, request.kind, taken);
    })().catch((err: unknown) => {
      if (res.headersSent || controller.signal.aborted) return;
      const status =
        err instanceof ProfileRequestError
          ? err.status
          : err instanceof ProfilerBusyError
            ? 409
            : 500;
      const message = status === 500 ? "the profile failed" : (err as Error).message;
      res
        .writeHead(status, {
          "content-type": "text/plain",
          ...(status === 401 ? { "www-authenticate": 'Bearer realm="keel-admin"' } : {}),
        })
        .end(`${message}\n`);
    });
    return true;
  };
}

/** Streams the profile file as an attachment, then removes it. */
function send(res: http.ServerResponse, kind: ProfileKind, taken: TakenProfile): void {
  const remove = () => rmSync(dirname(taken.path), { recursive: true, force: true });
  if (res.destroyed) {
    remove();
    return;
  }
  const who = taken.worker === undefined ? "" : `-worker${taken.worker}`;
  const stamp = new Date()
    .toISOString()
    .replaceAll(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  res.writeHead(200, {
    "content-type": "application/json",
    "content-length": statSync(taken.path).size,
    "content-disposition": `attachment; filename="keel${who}-${stamp}${profileExtensions[kind]}"`,
    ...(taken.worker === undefined ? {} : { "keel-worker": String(taken.worker) }),
  });
  const file = createReadStream(taken.path);
  file.pipe(res);
  file.once("close", remove);
  res.once("close", () => file.destroy());
}
