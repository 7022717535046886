import { existsSync, readFileSync } from "node:fs";

/**
 * The entries of an audit log file written so far (none when it does not exist yet). Lines are
 * written as calls end: the last may still be half written, without its newline, and is left out.
 */
export function auditLines(path: string): Record<string, unknown>[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .slice(0, -1)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}
