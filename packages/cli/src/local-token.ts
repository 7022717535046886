import { serverOutput } from "./server-bin.ts";

/**
 * Mints an access token with the key the local configuration names (`KEEL_JWT_SECRET`, a
 * configuration file, or the development secret in `$KEEL_DATA_DIR/jwt-secret`), exactly like
 * `keel token`. It works against a server started on this machine with the same configuration.
 */
export async function mintLocalToken(
  userId: bigint | string,
  roles: readonly string[],
  ttlSeconds = 3600,
): Promise<string> {
  return serverOutput([
    "token",
    "--user-id",
    String(userId),
    "--roles",
    roles.join(","),
    "--ttl",
    String(ttlSeconds),
  ]);
}
