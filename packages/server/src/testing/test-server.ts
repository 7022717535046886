import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openSqliteStore } from "@keel/store";
import { pino } from "pino";
import { type RunningServer, startServer } from "../server.ts";

export const testSecret = new TextEncoder().encode("test-secret-test-secret-test-secret!");

/** A real server on a free port with a fresh SQLite file; `stop()` removes everything. */
export async function startTestServer(
  options: { userServiceUrl?: string } = {},
): Promise<RunningServer & { stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "keel-server-"));
  const server = await startServer({
    host: "127.0.0.1",
    port: 0,
    store: openSqliteStore({ path: join(dir, "keel.db") }),
    tokens: { secret: testSecret },
    // The lowest cost the configuration allows: tests hash many passwords.
    passwordCost: 10,
    ...options,
    logger: pino({ level: process.env.KEEL_TEST_LOG_LEVEL ?? "silent" }),
  });
  return Object.assign(server, {
    async stop() {
      await server.close(1000);
      rmSync(dir, { recursive: true, force: true });
    },
  });
}
