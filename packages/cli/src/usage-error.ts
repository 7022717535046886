/**
 * A command line mistake (an unknown flag, a bad value): reported with a pointer to the command's
 * `--help`, exit code 2.
 */
export class UsageError extends Error {
  override readonly name = "UsageError";
}
