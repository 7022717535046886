import type { Command } from "./command.ts";
import { connectionFlags, connectionHelp, connectionOf, helpFlag, parseFlags } from "./flags.ts";

const usage = `usage: keel client [--admin-token TOKEN] [connection flags]

Walks through the API against a running server, printing each step and its result:
CreateUser, Login, GetUser, ListUsers, CreateOrder, PayOrder, ShipOrder, TrackOrder. The new user
calls with the access token Login gave it. ListUsers and ShipOrder need the admin role (ShipOrder
also allows fulfillment), and TrackOrder waits for the carrier's checkpoints (UpdateShipment, also
admin or fulfillment) until the order is delivered; those calls use the admin token:

  --admin-token TOKEN when given (--token is the same), for example from a remote server's
                      operator: keel token --user-id 1 --roles admin, run where the server runs;
  otherwise           a token minted here for the new user with role admin, signed with the local
                      configuration's key exactly like keel token (KEEL_JWT_SECRET, KEEL_CONFIG, or
                      the development secret in $KEEL_DATA_DIR/jwt-secret). That works when the
                      server runs on this machine with the same configuration, as ./dev start does.

flags:
  --admin-token TOKEN an access token with the admin role (see above)
  -h, --help          show this

${connectionHelp}`;

/** `keel client`: the API from signing up to a delivered order, step by step. */
export const clientCommand: Command = {
  usage,
  async run(args) {
    const flags = parseFlags(args, {
      ...helpFlag,
      ...connectionFlags,
      "admin-token": { type: "string" },
    });
    if (flags.help) {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    const { baseUrl, protocol, tls } = await connectionOf(flags);
    // Loaded after the flags are read: a mistake or --help costs no client code.
    const { walkthrough } = await import("./walkthrough.ts");
    return walkthrough({ baseUrl, protocol, tls, adminToken: flags["admin-token"] ?? flags.token });
  },
};
