import type { Command } from "./command.ts";
import {
  connectionFlags,
  connectionHelp,
  connectionOf,
  durationFlag,
  helpFlag,
  parseFlags,
} from "./flags.ts";
import { UsageError } from "./usage-error.ts";

const usage = `usage: keel api-key create --name NAME [--roles a,b] [--expires-in DURATION] [connection flags]
       keel api-key list [connection flags]
       keel api-key revoke --id KEY_ID [connection flags]

Manages the API keys machines call with (x-api-key, or authorization: Bearer keel_…), through the
server's admin RPCs: run it with an administrator's token (--token).

  create   makes a key with the roles given; prints the key on standard output, once: the
           server keeps only a hash of it. Its id and details go to standard error.
  list     the keys, newest first: id, name, roles, created, expires, last used, revoked.
  revoke   revokes a key: every instance refuses it within seconds.

flags:
  --name NAME              what the key is for, 1 to 64 characters (create)
  --roles a,b              roles of calls made with the key, for example fulfillment (create;
                           default: none)
  --expires-in DURATION    the key stops working after this long: 12h, 90d, … (create;
                           default: never)
  --id KEY_ID              the key to revoke, as list shows it (revoke)
  -h, --help               show this

${connectionHelp}`;

const actions = ["create", "list", "revoke"] as const;

/** `keel api-key create|list|revoke`: the API key admin RPCs from the command line. */
export const apiKeyCommand: Command = {
  usage,
  async run(args) {
    const [action, ...rest] = args;
    if (action === "--help" || action === "-h") {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    if (!actions.includes(action as (typeof actions)[number])) {
      throw new UsageError(
        `say what to do: ${actions.join(", ")}${action === undefined ? "" : `, not ${JSON.stringify(action)}`}`,
      );
    }
    const flags = parseFlags(rest, {
      ...helpFlag,
      ...connectionFlags,
      name: { type: "string" },
      roles: { type: "string" },
      "expires-in": { type: "string" },
      id: { type: "string" },
    });
    if (flags.help) {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    const misplaced = (["name", "roles", "expires-in", "id"] as const).filter(
      (flag) =>
        flags[flag] !== undefined && !(flag === "id" ? action === "revoke" : action === "create"),
    );
    if (misplaced.length > 0) {
      throw new UsageError(`--${misplaced[0]} does not go with ${action}`);
    }
    if (action === "create" && flags.name === undefined) throw new UsageError("--name is required");
    if (action === "revoke" && flags.id === undefined) throw new UsageError("--id is required");
    const expiresInMs =
      flags["expires-in"] === undefined
        ? undefined
        : durationFlag("expires-in", flags["expires-in"], 0);
    const connection = await connectionOf(flags);
    // Loaded after the flags are read: a mistake or --help costs no client code.
    const [{ runApiKeyAction }, { describeError }] = await Promise.all([
      import("./api-key-actions.ts"),
      import("./describe-error.ts"),
    ]);
    try {
      await runApiKeyAction(connection, {
        action: action as (typeof actions)[number],
        name: flags.name,
        roles: flags.roles,
        expiresInMs,
        id: flags.id,
      });
      return 0;
    } catch (err) {
      process.stderr.write(`keel api-key: ${describeError(err)}\n`);
      return 1;
    }
  },
};
