import type { Command } from "./command.ts";
import { connectionFlags, connectionHelp, connectionOf, helpFlag, parseFlags } from "./flags.ts";

const usage = `usage: keel seed [connection flags]

Loads a small, realistic data set into a running server through its public API, the way clients
would: four users (alan, barbara, edsger, frances; password "correct horse battery") and six orders,
one or more in every status (PENDING_PAYMENT, PAID, SHIPPED with a checkpoint, DELIVERED,
CANCELLED before and after payment), a profile update and frances's suspension by an
administrator, so that every kind of activity is recorded. Meant for a fresh database: a user of
those names already there stops it (exit 1).

Shipping and suspending need the roles fulfillment and admin: --token gives such a token,
otherwise one is minted with the local configuration's key, like keel token.

flags:
  -h, --help          show this

${connectionHelp}`;

/** `keel seed`: demo data through the API. */
export const seedCommand: Command = {
  usage,
  async run(args) {
    const flags = parseFlags(args, { ...helpFlag, ...connectionFlags });
    if (flags.help) {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    const { baseUrl, protocol, tls, token } = await connectionOf(flags);
    const { seed } = await import("./seed.ts");
    // --token is the staff's: the demo users' calls carry their own tokens.
    return seed({ baseUrl, protocol, tls, staffToken: token });
  },
};
