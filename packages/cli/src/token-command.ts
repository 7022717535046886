import type { Command } from "./command.ts";
import { helpFlag, parseFlags } from "./flags.ts";
import { serverOutput } from "./server-bin.ts";
import { UsageError } from "./usage-error.ts";

const usage = `usage: keel token --user-id ID [--roles a,b] [--ttl SECONDS]

Prints a development access token (a JWT) for any user id and roles, signed with the key the
server is configured with (KEEL_JWT_SECRET, KEEL_CONFIG's auth.jwtSecret, or the development
secret in $KEEL_DATA_DIR/jwt-secret): run it with the server's configuration, on its machine.

flags:
  --user-id ID        the token's subject, a positive user id (required)
  --roles a,b         roles, for example admin or fulfillment (default: none)
  --ttl SECONDS       lifetime (default 3600)
  -h, --help          show this

example:
  keel client --admin-token "$(keel token --user-id 1 --roles admin)"`;

/** `keel token`: the server's own `token` command (tokenCommand), with keel's flag handling. */
export const tokenCommand: Command = {
  usage,
  async run(args) {
    const flags = parseFlags(args, {
      ...helpFlag,
      "user-id": { type: "string" },
      roles: { type: "string" },
      ttl: { type: "string" },
    });
    if (flags.help) {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    // Checked before the configuration is loaded, which may create the development secret.
    if (flags["user-id"] === undefined) throw new UsageError("--user-id is required");
    // The rest (user id, roles, ttl) is keel-server token's; its usage errors exit 2 like ours.
    const forwarded = (["user-id", "roles", "ttl"] as const).flatMap((name) => {
      const value = flags[name];
      return value === undefined ? [] : [`--${name}`, value];
    });
    process.stdout.write(`${await serverOutput(["token", ...forwarded])}\n`);
    return 0;
  },
};
