import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, describe, it } from "node:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { type ConnectionOptions, createTransport } from "@keel/clients";
import { RetryInfoSchema } from "@keel/gen/errdetails/v1/errdetails_pb";
import {
  Health,
  HealthCheckResponse_ServingStatus as Serving,
} from "@keel/gen/health/v1/health_pb";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { freePort } from "./testing/free-port.ts";
import { runServer } from "./testing/process.ts";

// Load shedding and the memory watchdog on real server processes, loaded by real clients: the
// engine refuses shed calls on their method alone, in every protocol; with KEEL_ENGINE=connect,
// connect-node's adapter refuses them in its first interceptor.

/** The ways in: gRPC, and Connect over HTTP/2 and HTTP/1.1 (REST is called with fetch). */
const paths = {
  grpc: { protocol: "grpc", httpVersion: "2" },
  "connect over HTTP/2": { protocol: "connect", httpVersion: "2" },
  "connect over HTTP/1.1": { protocol: "connect", httpVersion: "1.1" },
} as const satisfies Record<string, ConnectionOptions>;
type Path = keyof typeof paths;
const pathNames = Object.keys(paths) as Path[];

const dir = mkdtempSync(join(tmpdir(), "keel-shedding-"));
after(() => rmSync(dir, { recursive: true, force: true }));

async function start(name: string, env: Record<string, string>) {
  const adminPort = await freePort();
  const server = runServer({
    KEEL_DATA_DIR: join(dir, name),
    KEEL_ADMIN_PORT: String(adminPort),
    KEEL_PASSWORD_COST: "10",
    // Only shedding may refuse calls for load here.
    KEEL_RATE_LIMIT_RPS: "1000000",
    KEEL_RATE_LIMIT_BURST: "1000000",
    KEEL_LOAD_SAMPLE_INTERVAL_MS: "50",
    ...env,
  });
  // Every log line from the start: the memory watchdog may speak before "serving".
  const logs: { msg?: string; port?: number }[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: server.child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      const entry = JSON.parse(line) as { msg?: string; port?: number };
      logs.push(entry);
      if (entry.msg === "serving gRPC, gRPC-Web and Connect") {
        resolve(`http://127.0.0.1:${entry.port}`);
      }
    });
    server.exited.then(({ code }) => reject(new Error(`the server exited with ${code}`)));
  });
  const client = (path: Path) => createTransport({ baseUrl: url, ...paths[path] });
  const users = (path: Path) => createClient(UserService, client(path));
  const health = createClient(Health, client("grpc"));
  const admin = `http://127.0.0.1:${adminPort}`;
  const shedTotal = async () => {
    const text = await (await fetch(`${admin}/metrics`)).text();
    const counts: Record<string, number> = {};
    for (const [, reason, value] of text.matchAll(
      /^keel_server_shed_total\{reason="(\w+)"\} (\S+)$/gm,
    )) {
      counts[reason as string] = Number(value);
    }
    return counts;
  };
  const messages = (msg: string) => logs.filter((line) => line.msg === msg).length;
  return { server, url, users, health, admin, shedTotal, messages };
}

/** The outcome of an unauthenticated GetUser: the error every call gets, one way or the other. */
async function getUserError(users: ReturnType<typeof createClient<typeof UserService>>) {
  try {
    await users.getUser({ userId: 1n });
    return undefined;
  } catch (err) {
    return ConnectError.from(err);
  }
}

async function until(what: string, condition: () => Promise<boolean>, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`still not ${what} after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("load shedding on a real server", () => {
  it("under real CPU load sheds new calls on every protocol, health still answers (NOT_SERVING), and it recovers", async () => {
    const s = await start("load", {
      KEEL_LOAD_SHEDDING: "true",
      KEEL_LOAD_SHEDDING_EVENT_LOOP_UTILIZATION: "0.2",
      KEEL_LOAD_SHEDDING_EVENT_LOOP_DELAY_MS: "20",
      KEEL_LOAD_SHEDDING_OVERLOAD_FOR_MS: "300",
      KEEL_LOAD_SHEDDING_RECOVER_FOR_MS: "1000",
      KEEL_LOAD_SHEDDING_RETRY_AFTER_MS: "700",
      KEEL_LOAD_SHEDDING_HEALTH_NOT_SERVING: "true",
    });
    // Idle: calls get as far as authentication.
    for (const path of pathNames) {
      assert.equal((await getUserError(s.users(path)))?.code, Code.Unauthenticated, path);
    }
    assert.equal((await s.health.check({})).status, Serving.SERVING);

    // Real work: 20 callers per path, each calling again as soon as it is answered.
    const seen = new Map<Path, ConnectError[]>(pathNames.map((path) => [path, []]));
    let refused = 0;
    let loading = true;
    const caller = async (path: Path) => {
      const users = s.users(path);
      while (loading) {
        const err = await getUserError(users);
        if (err?.code === Code.ResourceExhausted) {
          refused++;
          const some = seen.get(path) ?? [];
          if (some.length < 5) some.push(err);
        } else assert.equal(err?.code, Code.Unauthenticated, err?.message);
      }
    };
    const callers = pathNames.flatMap((path) => Array.from({ length: 20 }, () => caller(path)));
    try {
      await until("shedding on every path", async () =>
        [...seen.values()].every((some) => some.length > 0),
      );
      for (const err of [...seen.values()].flat()) {
        assert.match(
          err.rawMessage,
          /overloaded \(event-loop (delay|utilization)\).*retry after 700 ms/,
        );
        const [info] = err.findDetails(RetryInfoSchema);
        assert.equal(info?.retryDelay?.seconds, 0n);
        assert.equal(info?.retryDelay?.nanos, 700_000_000);
        assert.equal(err.metadata.get("retry-after"), "1");
      }
      // While shedding, health is answered (never shed), and says NOT_SERVING as configured.
      assert.equal((await s.health.check({})).status, Serving.NOT_SERVING);
      assert.equal((await fetch(`${s.admin}/readyz`)).status, 503);
    } finally {
      loading = false;
      await Promise.all(callers);
    }
    // Every refusal the clients saw was counted, by reason.
    const counted = await s.shedTotal();
    assert.deepEqual(Object.keys(counted).sort(), [
      "event_loop_delay",
      "event_loop_utilization",
      "memory",
    ]);
    assert.equal(counted.memory, 0);
    assert.equal((counted.event_loop_delay ?? 0) + (counted.event_loop_utilization ?? 0), refused);

    // Idle again: after recoverForMs below the thresholds, serving and calls pass.
    await until("serving again", async () => (await s.health.check({})).status === Serving.SERVING);
    for (const path of pathNames) {
      assert.equal((await getUserError(s.users(path)))?.code, Code.Unauthenticated, path);
    }
    assert.equal((await fetch(`${s.admin}/readyz`)).status, 200);
    // Logged once per transition, not per call.
    const started = s.messages("overloaded: shedding new calls");
    const stopped = s.messages("load back below the thresholds: stopped shedding");
    assert.ok(started >= 1 && started === stopped, `${started} starts, ${stopped} stops`);
    assert.ok(started < refused, `${started} log lines for ${refused} refusals`);
  });

  for (const engine of ["keel", "connect"] as const) {
    it(`above a memory soft limit sheds every call but health (SERVING), and logs it once (KEEL_ENGINE=${engine})`, async () => {
      const s = await start(`soft-${engine}`, {
        KEEL_MEMORY_HEAP_SOFT_LIMIT_BYTES: "1",
        KEEL_ENGINE: engine,
      });
      await until(
        "shedding",
        async () => s.messages("memory above its soft limit: shedding new calls") > 0,
      );
      for (const path of [...pathNames, "grpc"] as const) {
        const err = await getUserError(s.users(path));
        assert.equal(err?.code, Code.ResourceExhausted, `${path}: ${err?.message}`);
        assert.match(err?.rawMessage ?? "", /overloaded \(memory above its limit\)/);
        assert.equal(err?.metadata.get("retry-after"), "1");
      }
      // REST: 429 with retry-after.
      const rest = await fetch(`${s.url}/api/v1/users/1`);
      assert.equal(rest.status, 429);
      assert.equal(rest.headers.get("retry-after"), "1");
      assert.match(await rest.text(), /overloaded \(memory above its limit\)/);
      assert.equal((await s.health.check({})).status, Serving.SERVING);
      assert.equal((await s.shedTotal()).memory, 5);
      assert.equal(s.messages("memory above its soft limit: shedding new calls"), 1);
    });
  }

  it("above a memory hard limit reports NOT_SERVING on grpc.health.v1 and /readyz", async () => {
    const s = await start("hard", { KEEL_MEMORY_RSS_HARD_LIMIT_BYTES: "1" });
    await until(
      "not serving",
      async () => (await s.health.check({})).status === Serving.NOT_SERVING,
    );
    assert.equal((await fetch(`${s.admin}/readyz`)).status, 503);
    assert.equal((await getUserError(s.users("grpc")))?.code, Code.ResourceExhausted);
    assert.equal(s.messages("memory above its hard limit: not serving, shedding new calls"), 1);
  });
});
