import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { run } from "./launch.ts";
import { startKeel } from "./targets.ts";

/** Our server as the benchmark runs it: its entry point, settings and a prepared database. */
export interface KeelSetup {
  main: string;
  env: Record<string, string>;
  /** `authorization` header value for user 1 with role admin. */
  authorization: string;
  userId: bigint;
  /** Activities recorded for the user: what StreamUserActivities replays. */
  activities: number;
}

/**
 * The settings that differ from the defaults, and why:
 * - NODE_ENV=production and a configured JWT secret, as in deploy/Dockerfile;
 * - per-caller rate limits raised, since the default (100 calls/s per caller and method) would
 *   throttle the benchmark's one caller: per-caller limits are not meant for that;
 * - a data directory of its own.
 * Everything else is the default: info logs, metrics, tracing at its default sampling ratio, the
 * audit log, authentication and authorization, SQLite.
 */
export function keelEnvironment(dataDir: string): Record<string, string> {
  return {
    NODE_ENV: "production",
    KEEL_DATA_DIR: dataDir,
    KEEL_JWT_SECRET: randomBytes(32).toString("hex"),
    KEEL_RATE_LIMIT_RPS: "1000000",
    KEEL_RATE_LIMIT_BURST: "1000000",
  };
}

/**
 * The server's entry point in a checkout; fails, saying what to do, when it has not been built,
 * and warns when its sources are newer.
 */
export function checkBuilt(root: string): { main: string; warning?: string } {
  const main = join(root, "packages/server/dist/main.js");
  if (!existsSync(main)) {
    throw new Error(
      `${main} is missing: run ./dev build first (the benchmark runs dist, as users do)`,
    );
  }
  const built = statSync(main).mtimeMs;
  const src = join(root, "packages/server/src");
  const newer = readdirSync(src).filter(
    (name) => !name.endsWith(".test.ts") && statSync(join(src, name)).mtimeMs > built,
  );
  return newer.length === 0
    ? { main }
    : {
        main,
        warning: `packages/server/src is newer than dist (${newer.join(", ")}): run ./dev build`,
      };
}

/**
 * Creates the benchmark's user (CreateUser over gRPC, like any client), mints an admin token for
 * it with the server's `token` command, and records `updates` updates, so the user has
 * `updates + 1` activities to stream. Our server runs only for this, on any CPU.
 */
export async function prepareKeel(options: {
  main: string;
  dataDir: string;
  logFile: string;
  updates: number;
  /** Settings added to `keelEnvironment`'s, for example a PostgreSQL store. */
  env?: Record<string, string>;
}): Promise<KeelSetup> {
  const env = { ...keelEnvironment(options.dataDir), ...options.env };
  const server = await startKeel({
    main: options.main,
    env,
    cpu: undefined,
    logFile: options.logFile,
  });
  try {
    const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.port}` });
    const users = createClient(UserService, transport);
    const { user } = await users.createUser({
      username: "bench",
      email: "bench@example.com",
      password: "bench-password-1",
      tags: ["bench"],
    });
    if (user === undefined) throw new Error("CreateUser returned no user");
    const minted = await run(
      [
        process.execPath,
        options.main,
        "token",
        "--user-id",
        String(user.userId),
        "--roles",
        "admin",
        "--ttl",
        "7200",
      ],
      { env: { ...process.env, ...env }, timeoutMs: 30_000 },
    );
    if (minted.code !== 0) throw new Error(`token command failed: ${minted.stderr}`);
    const authorization = `Bearer ${minted.stdout.trim()}`;
    const headers = { authorization };
    // Each update changes the tags (an activity each) and the last leaves them as created.
    async function* updates() {
      for (let i = 1; i <= options.updates; i++) {
        yield {
          userId: user?.userId ?? 0n,
          user: { tags: i % 2 === 1 ? ["bench", "updated"] : ["bench"] },
          updateMask: { paths: ["tags"] },
        };
      }
    }
    const batch = await users.batchUpdateUsers(updates(), { headers });
    if (batch.updatedCount !== options.updates) {
      throw new Error(`BatchUpdateUsers applied ${batch.updatedCount}: ${batch.errors.join("; ")}`);
    }
    // The call every load makes, once, to know it succeeds before measuring it.
    const got = await users.getUser({ userId: user.userId }, { headers });
    if (got.user?.username !== "bench") throw new Error("GetUser did not return the bench user");
    return {
      main: options.main,
      env,
      authorization,
      userId: user.userId,
      activities: options.updates + 1,
    };
  } finally {
    await server.stop();
  }
}
