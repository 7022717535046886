import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";

/**
 * A program from the system's packages (Debian puts some in /usr/sbin, often not on PATH), or why
 * the tests that need it skip; in CI a missing one fails instead, since CI installs them all.
 */
export function findSystemTool(
  name: string,
): { path: string; skip?: undefined } | { path?: undefined; skip: string } {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin"];
  const path = dirs
    .filter((d) => d !== "")
    .map((d) => join(d, name))
    .find((p) => existsSync(p));
  if (path !== undefined) return { path };
  const reason = `${name} is not installed (scripts/ci-system-deps.sh installs it)`;
  if (process.env.CI === "true") throw new Error(`${reason}; CI must run the tests that need it.`);
  return { skip: reason };
}
