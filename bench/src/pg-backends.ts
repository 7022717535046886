import pg from "pg";
import { cpuMicros } from "./proc-stats.ts";

/**
 * The PostgreSQL server processes that serve one of our servers: the backends of its connections,
 * found by the `application_name` it connects with (set in its database URL). Their CPU time is
 * what PostgreSQL spends on its calls; the background writers, shared with every other user of
 * the database, are left out.
 */
export interface PgBackends {
  /** CPU time used so far by the backends alive now and those seen before, in microseconds. */
  cpuMicros(): Promise<number>;
  close(): Promise<void>;
}

/** `url` with `application_name` set: how a server's connections are told apart. */
export function withApplicationName(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set("application_name", name);
  return parsed.toString();
}

/** Watches the backends whose connections name `applicationName`, through a connection of its own. */
export async function watchPgBackends(url: string, applicationName: string): Promise<PgBackends> {
  const client = new pg.Client({ connectionString: withApplicationName(url, "keel-bench-watch") });
  await client.connect();
  // A backend that exits takes its CPU time with it: the last reading of each is kept, so a
  // connection the pool closed while idle still counts what it used up to then.
  const last = new Map<number, number>();
  return {
    async cpuMicros() {
      const { rows } = await client.query<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
        [applicationName],
      );
      for (const { pid } of rows) last.set(pid, cpuMicros([pid]));
      for (const pid of last.keys()) {
        const now = cpuMicros([pid]);
        if (now > 0) last.set(pid, now);
      }
      let total = 0;
      for (const value of last.values()) total += value;
      return total;
    },
    close: () => client.end(),
  };
}

/** Drops `schema` (with everything in it) from the database at `url`. */
export async function dropPgSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}
