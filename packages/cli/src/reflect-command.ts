import { Code, ConnectError } from "@connectrpc/connect";
import type { Command } from "./command.ts";
import {
  connectionFlags,
  connectionHelp,
  connectionOf,
  durationFlag,
  helpFlag,
  parseArguments,
} from "./flags.ts";
import { UsageError } from "./usage-error.ts";

const listUsage = `usage: keel list [SERVICE] [--timeout D] [connection flags]

Asks the server's gRPC reflection service what it serves: without SERVICE, the services, one per
line; with SERVICE (user.v1.UserService), its methods. No proto files are needed.

flags:
  --timeout D         deadline of each question to the server (default 5s)
  -h, --help          show this

${connectionHelp}`;

const describeUsage = `usage: keel describe SYMBOL [--timeout D] [connection flags]

Asks the server's gRPC reflection service for SYMBOL and prints it in protobuf's own syntax: a
service (user.v1.UserService), a method (user.v1.UserService.GetUser, or .../GetUser), a message
(user.v1.User), a field (user.v1.User.email), an enum (user.v1.UserStatus) or an enum value
(user.v1.USER_STATUS_ACTIVE). Exit 1 when the server knows no such symbol.

flags:
  --timeout D         deadline of each question to the server (default 5s)
  -h, --help          show this

${connectionHelp}`;

const flags = { ...helpFlag, ...connectionFlags, timeout: { type: "string" } } as const;

/** `keel list [SERVICE]`: the services, or a service's methods, over server reflection. */
export const listCommand: Command = {
  usage: listUsage,
  async run(args) {
    const { values, positionals } = parseArguments(args, flags, 1);
    if (values.help) {
      process.stdout.write(`${listUsage}\n`);
      return 0;
    }
    const client = await reflectionClient(values);
    const [service] = positionals;
    const { describeError } = await import("./describe-error.ts");
    try {
      if (service === undefined) {
        process.stdout.write(`${(await client.listServices()).join("\n")}\n`);
        return 0;
      }
      const { findSymbol } = await import("./proto-text.ts");
      const found = findSymbol(await client.filesOf(service), service);
      if (found?.kind !== "service") {
        process.stderr.write(`keel list: ${service} is not a service; keel list names them\n`);
        return 1;
      }
      const methods = found.methods.map((m) => `${found.typeName}.${m.name}`);
      process.stdout.write(`${methods.join("\n")}\n`);
      return 0;
    } catch (err) {
      process.stderr.write(`keel list: ${describeError(err)}\n`);
      return 1;
    }
  },
};

/** `keel describe SYMBOL`: a symbol in protobuf syntax, over server reflection. */
export const describeCommand: Command = {
  usage: describeUsage,
  async run(args) {
    const { values, positionals } = parseArguments(args, flags, 1);
    if (values.help) {
      process.stdout.write(`${describeUsage}\n`);
      return 0;
    }
    const [given] = positionals;
    if (given === undefined) throw new UsageError("name the symbol to describe");
    // package.Service/Method, as gRPC paths and keel's messages write a method, is a method too.
    const symbol = given.replace(/^\//, "").replace("/", ".");
    const client = await reflectionClient(values);
    const [{ describeError }, { describeSymbol, findSymbol }] = await Promise.all([
      import("./describe-error.ts"),
      import("./proto-text.ts"),
    ]);
    try {
      const found = findSymbol(await client.filesOf(symbol), symbol);
      if (found === undefined) throw new ConnectError(symbol, Code.NotFound);
      process.stdout.write(`${describeSymbol(found)}\n`);
      return 0;
    } catch (err) {
      const unknown = ConnectError.from(err).code === Code.NotFound;
      process.stderr.write(
        unknown
          ? `keel describe: the server knows no symbol ${JSON.stringify(symbol)}; keel list names its services, keel list SERVICE their methods\n`
          : `keel describe: ${describeError(err)}\n`,
      );
      return 1;
    }
  },
};

async function reflectionClient(
  values: Parameters<typeof connectionOf>[0] & { timeout?: string | undefined },
) {
  const connection = await connectionOf(values);
  const timeoutMs = durationFlag("timeout", values.timeout, 5000);
  const { createReflectionClient } = await import("./reflection-client.ts");
  return createReflectionClient({ ...connection, timeoutMs });
}
