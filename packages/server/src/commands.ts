import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { createHs256Keyring, signHs256 } from "@keel/interceptors";
import { backupSqlite, restoreSqlite, type SqliteCopyResult } from "@keel/store";
import { pino } from "pino";
import type { ServerConfig } from "./config.ts";
import { knownRoles } from "./roles.ts";
import { openStore } from "./serve.ts";

/** A command line mistake: reported with the usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Each command's synopsis and what it does, in the order `help` lists them. */
export const commandUsage: Readonly<Record<string, string>> = {
  "serve (default)": "serve gRPC, gRPC-Web and Connect (configuration: KEEL_* variables)",
  "token --user-id ID [--roles a,b] [--ttl SECONDS]":
    "print an access token signed with the configured secret (development); the secret must\nexist: KEEL_JWT_SECRET, or the one the server created in $KEEL_DATA_DIR/jwt-secret",
  "grant --username NAME --roles a,b":
    "give a user these roles besides those it has (for example admin, fulfillment); they\napply from the user's next login or token refresh",
  "revoke --username NAME --roles a,b": "take these roles from a user",
  "certs [--out DIR] [--hosts a,b]":
    "write a development CA, server and client certificates (TLS, mTLS) into DIR\n(default: <data dir>/certs)",
  connection:
    "print, as JSON, where a client on this machine reaches the server (the keel command's\ndefault --url)",
  "backup --out FILE":
    "copy the SQLite database into a new FILE while the server runs (SQLite's online backup:\nconsistent, writes go on)",
  "restore --from FILE":
    "replace the SQLite database with a backup; the server (every worker) must be stopped",
  help: "show this",
};

/** The usage of one command (`keel-server certs --help`), or of all. */
export function usageOf(command?: string): string {
  const entries = Object.entries(commandUsage);
  const one = entries.find(([synopsis]) => synopsis.split(" ")[0] === command);
  if (one !== undefined)
    return `usage: keel-server ${one[0].replace(" (default)", "")}\n\n${one[1]}`;
  const lines = entries.map(([synopsis, what]) => `  ${synopsis}\n${what.replace(/^/gm, "    ")}`);
  return `usage: keel-server [command] [flags]\n\ncommands:\n${lines.join("\n")}`;
}

/** The usage of every command. */
export const usage = usageOf();

function flags<T extends Record<string, { type: "string" }>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values as {
      [K in keyof T]?: string;
    };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function roleList(value: string | undefined): string[] {
  const roles = (value ?? "").split(",").filter((r) => r !== "");
  for (const role of roles) {
    if (!/^[a-z][a-z0-9_-]{0,31}$/.test(role))
      throw new UsageError(`invalid role ${JSON.stringify(role)}`);
  }
  return roles;
}

/** `token`: an access token for any user and roles, signed like the server's own. */
export async function tokenCommand(config: ServerConfig, args: string[]): Promise<string> {
  const f = flags(args, {
    "user-id": { type: "string" },
    roles: { type: "string" },
    ttl: { type: "string" },
  });
  if (f["user-id"] === undefined || !/^[1-9][0-9]{0,18}$/.test(f["user-id"])) {
    throw new UsageError("--user-id must be a positive user id");
  }
  const ttl = Number(f.ttl ?? 3600);
  if (!Number.isInteger(ttl) || ttl <= 0)
    throw new UsageError("--ttl must be a positive number of seconds");
  const now = Math.floor(Date.now() / 1000);
  // Signed with the current key and carrying its `kid`, as the server's own tokens are.
  return signHs256(
    {
      typ: "access",
      roles: roleList(f.roles),
      iss: config.auth.issuer,
      aud: config.auth.audience,
      sub: f["user-id"],
      iat: now,
      exp: now + ttl,
    },
    createHs256Keyring({ current: config.auth.secret }).current,
  );
}

/** `grant`: adds roles to a user's, in the configured store. */
export function grantCommand(config: ServerConfig, args: string[]): Promise<string> {
  return changeRoles(config, args, "grant", (had, roles) => [...new Set([...had, ...roles])]);
}

/** `revoke`: takes roles from a user's, in the configured store. */
export function revokeCommand(config: ServerConfig, args: string[]): Promise<string> {
  return changeRoles(config, args, "revoke", (had, roles) => had.filter((r) => !roles.includes(r)));
}

async function changeRoles(
  config: ServerConfig,
  args: string[],
  name: string,
  change: (had: readonly string[], roles: readonly string[]) => string[],
): Promise<string> {
  const f = flags(args, { username: { type: "string" }, roles: { type: "string" } });
  if (f.username === undefined || f.roles === undefined)
    throw new UsageError(`${name} needs --username and --roles`);
  const roles = roleList(f.roles);
  if (roles.length === 0) throw new UsageError("--roles must name at least one role");
  const known = knownRoles();
  const unknown = roles.filter((role) => !known.includes(role));
  if (unknown.length > 0) {
    throw new UsageError(
      `unknown role ${unknown.map((r) => JSON.stringify(r)).join(", ")}: the services' policies name ${known.join(", ")}`,
    );
  }
  const store = await openStore(config, pino({ level: "warn" }));
  try {
    const found = await store.users.findCredentials(f.username);
    if (found === undefined) throw new UsageError(`no user named ${JSON.stringify(f.username)}`);
    const user = await store.users.setRoles(found.user.id, change(found.user.roles, roles));
    return `user ${user.id} (${user.username}) now has roles: ${user.roles.join(", ") || "(none)"}`;
  } finally {
    await store.close();
  }
}

/** `certs`: development TLS material: a CA, a server certificate and a client certificate. */
export async function certsCommand(config: ServerConfig, args: string[]): Promise<string> {
  const f = flags(args, { out: { type: "string" }, hosts: { type: "string" } });
  const hosts = f.hosts?.split(",").filter((h) => h !== "");
  // Loaded here only: the certificate library is not needed for anything else.
  const { writeDevCerts } = await import("./dev-certs.ts");
  const files = await writeDevCerts({
    dir: resolve(f.out ?? join(config.dataDir, "certs")),
    ...(hosts === undefined ? {} : { hosts }),
  });
  return `wrote ${files.join(", ")}`;
}

/**
 * `connection`: where a client on this machine reaches the configured server, as JSON: `url`
 * (http or https, the API port, 127.0.0.1 for a wildcard address) and `clientCertificate`
 * (whether the server asks for one). The keel command reads it for its default --url.
 */
export async function connectionCommand(config: ServerConfig, args: string[]): Promise<string> {
  flags(args, {});
  const wildcard = config.host === "0.0.0.0" || config.host === "::";
  const host = wildcard
    ? "127.0.0.1"
    : config.host.includes(":")
      ? `[${config.host}]`
      : config.host;
  return JSON.stringify({
    url: `${config.tls === undefined ? "http" : "https"}://${host}:${config.port}`,
    clientCertificate: config.tls?.clientCa !== undefined,
  });
}

/** `backup`: a consistent copy of the embedded SQLite database, taken while the server runs. */
export async function backupCommand(config: ServerConfig, args: string[]): Promise<string> {
  const f = flags(args, { out: { type: "string" } });
  if (f.out === undefined) throw new UsageError("backup needs --out FILE");
  const path = sqlitePath(config, "backup");
  const out = resolve(f.out);
  return describeCopy(`backed up ${path} to ${out}`, await backupSqlite(path, out));
}

/** `restore`: puts a backup in place of the embedded SQLite database, the server stopped. */
export async function restoreCommand(config: ServerConfig, args: string[]): Promise<string> {
  const f = flags(args, { from: { type: "string" } });
  if (f.from === undefined) throw new UsageError("restore needs --from FILE");
  const path = sqlitePath(config, "restore");
  const from = resolve(f.from);
  return describeCopy(`restored ${from} to ${path}`, await restoreSqlite(from, path));
}

function sqlitePath(config: ServerConfig, command: string): string {
  if (config.store.kind !== "sqlite") {
    throw new UsageError(
      `${command} is for the embedded SQLite database; with PostgreSQL (KEEL_DATABASE_URL) use pg_dump and pg_restore`,
    );
  }
  return config.store.path;
}

function describeCopy(what: string, copy: SqliteCopyResult): string {
  return `${what}: ${copy.pages} pages, ${copy.bytes} bytes, schema version ${copy.schemaVersion}`;
}
