import cluster from "node:cluster";
import { runPrimary } from "./cluster-primary.ts";
import {
  backupCommand,
  certsCommand,
  connectionCommand,
  grantCommand,
  restoreCommand,
  revokeCommand,
  tokenCommand,
  UsageError,
  usage,
  usageOf,
} from "./commands.ts";
import { ConfigError, type LoadConfigOptions, loadConfig, type ServerConfig } from "./config.ts";
import { serve } from "./serve.ts";
import { describeStartError, startSources } from "./start-errors.ts";

/** The operator commands, each with what it needs of the JWT secret (see LoadConfigOptions). */
const commands: Record<
  string,
  {
    secret: LoadConfigOptions["secret"];
    run: (config: ServerConfig, args: string[]) => Promise<string>;
  }
> = {
  // Signs with the server's key: never with a new one the server has never seen.
  token: { secret: "existing", run: tokenCommand },
  grant: { secret: "none", run: grantCommand },
  revoke: { secret: "none", run: revokeCommand },
  certs: { secret: "none", run: certsCommand },
  connection: { secret: "none", run: connectionCommand },
  backup: { secret: "none", run: backupCommand },
  restore: { secret: "none", run: restoreCommand },
};

/** keel-server: serve (the default), or an operator command. Exit 2 on a bad flag or setting. */
async function main(argv: string[]): Promise<void> {
  const [command = "serve", ...args] = argv;
  if (command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(`${usage}\n`);
    return;
  }
  if (command !== "serve" && !(command in commands))
    throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  // Before the configuration is read: help needs none.
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(`${usageOf(command)}\n`);
    return;
  }
  if (command === "serve") {
    if (args.length > 0)
      throw new UsageError("serve takes no arguments; configure it with KEEL_* variables");
    const config = loadConfig();
    try {
      if (config.workers !== 1 && cluster.isPrimary) await runPrimary(config);
      else await serve(config);
    } catch (err) {
      throw new Error(describeStartError(err, startSources(config)), { cause: err });
    }
    return;
  }
  const found = commands[command];
  if (found === undefined) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  const config = loadConfig(process.env, { secret: found.secret });
  process.stdout.write(`${await found.run(config, args)}\n`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) {
    process.stderr.write(`keel-server: ${err.message}\n\n${usage}\n`);
    process.exit(2);
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`keel-server: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`keel-server: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
