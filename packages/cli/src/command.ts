/** One `keel` subcommand. */
export interface Command {
  /** The usage text `keel <command> --help` prints. */
  readonly usage: string;
  /**
   * Runs the command with the arguments after its name. Resolves to the exit code (0 success,
   * 1 failure), or to `undefined` when the process must go on running (a server). Throws a
   * UsageError for a command line mistake (exit code 2).
   */
  run(args: string[]): Promise<number | undefined>;
}
