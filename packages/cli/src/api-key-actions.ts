import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createTransport } from "@keel/clients";
import { type ApiKey, UserService } from "@keel/gen/user/v1/user_pb";
import type { Connection } from "./flags.ts";

/** What `keel api-key` was asked to do, its flags read. */
export interface ApiKeyAction {
  action: "create" | "list" | "revoke";
  name: string | undefined;
  /** Comma-separated. */
  roles: string | undefined;
  expiresInMs: number | undefined;
  id: string | undefined;
}

/** Calls the admin RPC and prints its answer; rejects with the server's error. */
export async function runApiKeyAction(
  connection: Connection,
  request: ApiKeyAction,
): Promise<void> {
  const users = createClient(UserService, createTransport(connection));
  if (request.action === "create") {
    const { apiKey, key } = await users.createApiKey({
      name: request.name ?? "",
      roles: (request.roles ?? "")
        .split(",")
        .map((role) => role.trim())
        .filter((role) => role !== ""),
      ...(request.expiresInMs === undefined
        ? {}
        : { expiresAt: timestampFromDate(new Date(Date.now() + request.expiresInMs)) }),
    });
    process.stdout.write(`${key}\n`);
    process.stderr.write(
      `created API key ${describe(apiKey)}\nThe key above is shown this once: store it as a secret now.\n`,
    );
    return;
  }
  if (request.action === "revoke") {
    const { apiKey } = await users.revokeApiKey({ keyId: request.id ?? "" });
    process.stdout.write(`revoked API key ${describe(apiKey)}\n`);
    return;
  }
  const { apiKeys } = await users.listApiKeys({});
  const rows = apiKeys.map((k) => [
    k.keyId,
    k.name,
    k.roles.join(",") || "-",
    time(k.createdAt),
    time(k.expiresAt),
    time(k.lastUsedAt),
    time(k.revokedAt),
  ]);
  const header = ["ID", "NAME", "ROLES", "CREATED", "EXPIRES", "LAST USED", "REVOKED"];
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => (r[i] as string).length)),
  );
  for (const row of [header, ...rows]) {
    process.stdout.write(
      `${row
        .map((cell, i) => cell.padEnd(widths[i] as number))
        .join("  ")
        .trimEnd()}\n`,
    );
  }
}

function describe(key: ApiKey | undefined): string {
  if (key === undefined) return "";
  const roles = key.roles.length === 0 ? "no roles" : `roles ${key.roles.join(",")}`;
  const expires = key.expiresAt === undefined ? "never expires" : `expires ${time(key.expiresAt)}`;
  return `${key.keyId} (${JSON.stringify(key.name)}, ${roles}, ${expires})`;
}

function time(t: Parameters<typeof timestampDate>[0] | undefined): string {
  return t === undefined ? "-" : `${timestampDate(t).toISOString().slice(0, 19)}Z`;
}
