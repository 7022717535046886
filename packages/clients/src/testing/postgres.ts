import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

// The clients package has no database driver; the store's test helpers (its `pg`) run in a child
// process, so that the clients do not depend on the store at all.
const storeTesting = fileURLToPath(
  new URL("../../../store/src/testing/postgres.ts", import.meta.url),
);

/** The PostgreSQL the tests use: KEEL_TEST_DATABASE_URL, or the machine's local server. */
export const postgresUrl =
  process.env.KEEL_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** Runs `code` (an ES module with `store`, the store's testing module, in scope); returns its stdout. */
async function withStore(code: string, ...args: string[]): Promise<string> {
  const script = `const store = await import(${JSON.stringify(storeTesting)});\n${code}`;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--conditions=source", "--input-type=module", "-e", script, ...args],
    { env: process.env },
  );
  return stdout;
}

/**
 * Undefined when PostgreSQL tests can run, otherwise why they are skipped. In CI (CI=true) an
 * unreachable database is an error, as in the store's own tests.
 */
export async function postgresSkipReason(): Promise<string | undefined> {
  try {
    const out = await withStore(
      "process.stdout.write(JSON.stringify({ reason: await store.postgresSkipReason() }));",
    );
    return (JSON.parse(out) as { reason?: string }).reason;
  } catch (err) {
    throw new Error(`checking PostgreSQL failed: ${(err as { stderr?: string }).stderr ?? err}`);
  }
}

/** A schema name no other test run uses. */
export function freshSchema(): string {
  return `keel_clients_${randomBytes(6).toString("hex")}`;
}

export async function dropSchema(schema: string): Promise<void> {
  await withStore("await store.dropSchema(process.argv[1]);", schema);
}
