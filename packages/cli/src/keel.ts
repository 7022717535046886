import type { Command } from "./command.ts";

const usage = `usage: keel <command> [flags]

commands:
  server    start the service (configured by KEEL_* variables, like ./dev start)
  client    walk through the API against a running server, step by step
  stream    show server, client and bidi streaming live
  perf      load one method of a running server and report requests/s and latencies
  token     print a development access token signed with the configured key
  health    check a server's health like a Kubernetes gRPC probe (exit 0 when SERVING)
  api-key   create, list and revoke the API keys machines call with (an admin's --token)
  list      list the services a server serves, or a service's methods (server reflection)
  describe  show a service, method, message or enum in protobuf syntax (server reflection)
  seed      load a small demo data set (users, orders in every state) through the API
  help      show this, or a command's usage: keel help <command>

Run keel <command> --help for a command's flags. The commands that call a server take
--url (default: the server configured here by KEEL_* variables or KEEL_CONFIG, as the server
reads them), --protocol grpc|grpc-web|connect, --token, and --ca, --cert, --key for TLS.
Exit codes: 0 success, 1 failure, 2 a command line mistake.`;

// Each command is loaded only when run: the server's code is large and a probe must start fast.
const commands: Record<string, () => Promise<Command>> = {
  server: async () => (await import("./server-command.ts")).serverCommand,
  client: async () => (await import("./client-command.ts")).clientCommand,
  stream: async () => (await import("./stream-command.ts")).streamCommand,
  perf: async () => (await import("./perf-command.ts")).perfCommand,
  token: async () => (await import("./token-command.ts")).tokenCommand,
  health: async () => (await import("./health-command.ts")).healthCommand,
  "api-key": async () => (await import("./api-key-command.ts")).apiKeyCommand,
  list: async () => (await import("./reflect-command.ts")).listCommand,
  describe: async () => (await import("./reflect-command.ts")).describeCommand,
  seed: async () => (await import("./seed-command.ts")).seedCommand,
};

/** Runs `keel <command> [flags]`; resolves to the exit code, or undefined to keep running. */
async function main(argv: string[]): Promise<number | undefined> {
  const [name, ...args] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    const topic = name === "help" ? args[0] : undefined;
    const load = topic === undefined ? undefined : commands[topic];
    if (topic !== undefined && load === undefined) {
      return mistake(`unknown command ${JSON.stringify(topic)}`, "keel --help");
    }
    const text = load === undefined ? usage : (await load()).usage;
    // Bare `keel` is a mistake too: it says what to do, on stderr.
    (name === undefined ? process.stderr : process.stdout).write(`${text}\n`);
    return name === undefined ? 2 : 0;
  }
  const load = commands[name];
  if (load === undefined) return mistake(`unknown command ${JSON.stringify(name)}`, "keel --help");
  try {
    return await (await load()).run(args);
  } catch (err) {
    // Ours, or the server executable's usage errors passed on: exit code 2 as well.
    if (err instanceof Error && (err.name === "UsageError" || err.name === "ConfigError")) {
      return mistake(`${name}: ${err.message}`, `keel ${name} --help`);
    }
    throw err;
  }
}

function mistake(message: string, help: string): number {
  process.stderr.write(`keel: ${message}\nRun ${help} for usage.\n`);
  return 2;
}

function exit(code: number): void {
  // Exit once what was written has been flushed, even if connections are still open.
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
}

// Output piped into a reader that stopped reading (keel perf --help | head) is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE") throw err;
    process.exit(process.exitCode ?? 0);
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`keel: ${err instanceof Error ? err.message : String(err)}\n`);
    exit(1);
  },
);
