import { relative } from "node:path";
import type { ServerConfig } from "./config.ts";

/** A setting a failure to start may come from: a port it listens on, or a file or folder. */
interface Source {
  /** "KEEL_ADMIN_PORT (adminPort)" */
  setting: string;
  port?: number;
  /** A path the setting names; errors on it, or on what lies under it, come from the setting. */
  path?: string;
}

/** What each failure means, said after the setting that caused it. */
const hints: Record<string, string> = {
  EADDRINUSE: "the port is in use: stop what listens there, or set another",
  EADDRNOTAVAIL: "this machine has no such address",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EROFS: "the file system is read-only",
  ENOENT: "it does not exist",
  ENOTDIR: "a part of the path is not a folder",
};

/** The settings whose ports and paths a starting server uses, most specific first. */
export function startSources(config: ServerConfig): Source[] {
  return [
    { setting: "KEEL_PORT (port)", port: config.port },
    { setting: "KEEL_ADMIN_PORT (adminPort)", port: config.adminPort },
    ...(config.tls === undefined
      ? []
      : [
          { setting: "KEEL_TLS_CERT (tls.cert)", path: config.tls.cert },
          { setting: "KEEL_TLS_KEY (tls.key)", path: config.tls.key },
          ...(config.tls.clientCa === undefined
            ? []
            : [{ setting: "KEEL_TLS_CLIENT_CA (tls.clientCa)", path: config.tls.clientCa }]),
        ]),
    ...(config.auth.jwksFile === undefined
      ? []
      : [{ setting: "KEEL_JWKS_FILE (auth.jwksFile)", path: config.auth.jwksFile }]),
    ...(config.audit === "stdout"
      ? []
      : [{ setting: "KEEL_AUDIT_LOG (auditLog)", path: config.audit.path }]),
    ...(config.store.kind === "sqlite"
      ? [{ setting: "KEEL_SQLITE_PATH (database.sqlitePath)", path: config.store.path }]
      : []),
    { setting: "KEEL_DATA_DIR (dataDir)", path: config.dataDir },
  ];
}

/**
 * The message of a failure to start (a port in use, a folder it may not write), naming the
 * setting it came from and what to do, when one of `sources` explains it; otherwise the error's
 * own message.
 */
export function describeStartError(err: unknown, sources: readonly Source[]): string {
  const e = err as NodeJS.ErrnoException & { port?: number; address?: string };
  const message = err instanceof Error ? err.message : String(err);
  const hint = e.code === undefined ? undefined : hints[e.code];
  if (hint === undefined) return message;
  const source = sources.find((s) =>
    e.syscall === "listen" || e.syscall === "bind"
      ? s.port !== undefined && s.port === e.port
      : s.path !== undefined && typeof e.path === "string" && within(e.path, s.path),
  );
  if (source === undefined) return message;
  const value = source.port ?? JSON.stringify(source.path);
  return `${source.setting} = ${value}: ${hint} (${message})`;
}

function within(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === "" || (!rel.startsWith("..") && !rel.startsWith("/"));
}
