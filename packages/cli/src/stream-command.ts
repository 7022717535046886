import type { Command } from "./command.ts";
import {
  connectionFlags,
  connectionHelp,
  connectionOf,
  durationFlag,
  helpFlag,
  parseFlags,
} from "./flags.ts";

const usage = `usage: keel stream [--interval DURATION] [connection flags]

Shows the three streaming kinds live against a running server, on a demo user it signs up (each
line is stamped with the seconds since the start):

  server-stream   StreamUserActivities: the user's activities so far, then live ones; it stays
                  open while the two others run, and shows what they do as it happens
  client-stream   BatchUpdateUsers: three updates sent one at a time, then the server's summary
  bidi            SyncUserStatus: a follower stream follows the user, a setter stream changes its
                  status three times; each change reaches the follower live

Calls are made as the demo user (with the token Login gives it) unless --token is given. The
setter stream changes a status, which only an administrator may: without --token it calls with
an admin token minted like \`keel token\` with the local configuration (a server on this machine).

flags:
  --interval DURATION pause between the messages a stream sends (default 300ms)
  -h, --help          show this

${connectionHelp}`;

/** `keel stream`: server, client and bidi streaming, with what arrives printed as it arrives. */
export const streamCommand: Command = {
  usage,
  async run(args) {
    const flags = parseFlags(args, {
      ...helpFlag,
      ...connectionFlags,
      interval: { type: "string" },
    });
    if (flags.help) {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    const connection = await connectionOf(flags);
    const intervalMs = durationFlag("interval", flags.interval, 300);
    // Loaded after the flags are read: a mistake or --help costs no client code.
    const { streamDemo } = await import("./stream-demo.ts");
    return streamDemo({ ...connection, intervalMs });
  },
};
