import type { Command } from "./command.ts";
import {
  connectionFlags,
  connectionHelp,
  connectionOf,
  durationFlag,
  helpFlag,
  parseFlags,
} from "./flags.ts";

const usage = `usage: keel health [--service NAME] [--timeout DURATION] [connection flags]

Checks the server's health the way a Kubernetes gRPC probe does: one grpc.health.v1.Health/Check
call. Prints the status and exits 0 when it is SERVING, 1 otherwise (NOT_SERVING, an unknown
service, an error, no answer within the timeout, nothing listening).

flags:
  --service NAME      the service to check, for example user.v1.UserService (default "": the
                      whole server)
  --timeout DURATION  deadline of the check, connecting included: 500ms, 2s, … (default 1s)
  -h, --help          show this

${connectionHelp}`;

/** `keel health`: a grpc.health.v1 Check with a deadline; exit 0 only when SERVING. */
export const healthCommand: Command = {
  usage,
  async run(args) {
    const flags = parseFlags(args, {
      ...helpFlag,
      ...connectionFlags,
      service: { type: "string", default: "" },
      timeout: { type: "string" },
    });
    if (flags.help) {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    const connection = await connectionOf(flags);
    const timeoutMs = durationFlag("timeout", flags.timeout, 1000);
    const service = flags.service === "" ? '"" (the server)' : flags.service;
    // Loaded after the flags are read: a mistake or --help costs no client code.
    const [{ checkHealth }, { describeError }] = await Promise.all([
      import("./check-health.ts"),
      import("./describe-error.ts"),
    ]);
    try {
      const { serving, status } = await checkHealth({
        ...connection,
        service: flags.service,
        timeoutMs,
      });
      if (serving) {
        process.stdout.write(`${status}\n`);
        return 0;
      }
      process.stderr.write(`keel health: ${service} is ${status} at ${connection.baseUrl}\n`);
      return 1;
    } catch (err) {
      process.stderr.write(
        `keel health: cannot check ${service} at ${connection.baseUrl}: ${describeError(err)}\n`,
      );
      return 1;
    }
  },
};
