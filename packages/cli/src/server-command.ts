import type { Command } from "./command.ts";
import { helpFlag, parseFlags } from "./flags.ts";
import { runServerProcess } from "./server-bin.ts";

const usage = `usage: keel server

Starts the service, exactly as ./dev start does: gRPC, gRPC-Web and Connect on one port (default
9090), the admin port (default 9091), state in $KEEL_DATA_DIR (default ./data). It is configured
with KEEL_* environment variables or a KEEL_CONFIG file (see docs/configuration.md), not
with flags. It stops cleanly on SIGTERM or SIGINT.

flags:
  -h, --help          show this`;

/** `keel server`: the server's own executable, in the foreground. */
export const serverCommand: Command = {
  usage,
  async run(args) {
    const flags = parseFlags(args, helpFlag);
    if (flags.help) {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    return runServerProcess(["serve"]);
  },
};
