import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { tokenCommand } from "./commands.ts";
import { loadConfig, readSettings } from "./config.ts";
import { adminPortOf, runServer, type ServerProcess } from "./testing/process.ts";

const dataDir = mkdtempSync(join(tmpdir(), "keel-profiling-"));
after(() => rmSync(dataDir, { recursive: true, force: true }));

const env = {
  KEEL_DATA_DIR: dataDir,
  KEEL_JWT_SECRET: "a profiling test secret of 32 characters or more",
  KEEL_PROFILING: "true",
  KEEL_PROFILING_MAX_SECONDS: "120",
};

async function stop(server: ServerProcess): Promise<void> {
  process.kill(server.child.pid as number, "SIGTERM");
  assert.equal((await server.exited).code, 0);
}

describe("profiling on the admin port", () => {
  const admin = tokenCommand(loadConfig(env), ["--user-id", "1", "--roles", "admin"]);
  const user = tokenCommand(loadConfig(env), ["--user-id", "2", "--roles", "fulfillment"]);
  const get = async (port: number, path: string, token?: string, signal?: AbortSignal) =>
    fetch(`http://127.0.0.1:${port}${path}`, {
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      ...(signal === undefined ? {} : { signal }),
    });

  it("serves CPU profiles, heap sampling profiles and heap snapshots to admin tokens only, one at a time", async () => {
    const [single, off] = [runServer(env), runServer({ ...env, KEEL_PROFILING: "false" })];
    const [port, offPort] = await Promise.all([
      adminPortOf(single, "serving gRPC, gRPC-Web and Connect"),
      adminPortOf(off, "serving gRPC, gRPC-Web and Connect"),
    ]);
    const token = await admin;

    // Off (the default): not served at all, whatever the token.
    assert.equal((await get(offPort, "/debug/profile/cpu?seconds=1", token)).status, 404);

    const anonymous = await get(port, "/debug/profile/cpu?seconds=1");
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers.get("www-authenticate"), 'Bearer realm="keel-admin"');
    assert.match(await anonymous.text(), /needs an Authorization: Bearer admin token/);
    assert.equal((await get(port, "/debug/profile/cpu?seconds=1", "not.a.token")).status, 401);
    const notAdmin = await get(port, "/debug/profile/cpu?seconds=1", await user);
    assert.equal(notAdmin.status, 403);
    assert.match(await notAdmin.text(), /admin role/);
    for (const bad of ["seconds=0", "seconds=121", "seconds=1.5", "seconds=x"]) {
      const answer = await get(port, `/debug/profile/cpu?${bad}`, token);
      assert.equal(answer.status, 400, bad);
      assert.equal(await answer.text(), "seconds must be a whole number from 1 to 120\n");
    }
    const worker = await get(port, "/debug/profile/cpu?seconds=1&worker=1", token);
    assert.equal(worker.status, 400);
    assert.match(await worker.text(), /cluster mode only/);
    const unknown = await get(port, "/debug/profile/goroutine", token);
    assert.equal(unknown.status, 404);
    assert.match(await unknown.text(), /\/debug\/profile\/cpu, \/debug\/profile\/heap-sampling/);

    // Two at once: one is taken, the other is refused with 409 rather than queued.
    const both = await Promise.all([
      get(port, "/debug/profile/cpu?seconds=1", token),
      get(port, "/debug/profile/cpu?seconds=1", token),
    ]);
    assert.deepEqual(both.map((r) => r.status).sort(), [200, 409]);
    const cpu = both.find((r) => r.status === 200) as Response;
    assert.match(
      cpu.headers.get("content-disposition") ?? "",
      /^attachment; filename="keel-\d{8}T\d{6}Z\.cpuprofile"$/,
    );
    const profile = (await cpu.json()) as {
      nodes: { callFrame: { functionName: string } }[];
      startTime: number;
      endTime: number;
      samples: number[];
    };
    assert.ok(profile.nodes.some((n) => n.callFrame.functionName === "(root)"));
    assert.ok(profile.endTime - profile.startTime >= 1_000_000, "a second, in microseconds");
    assert.ok(profile.samples.length > 0);
    assert.match(await (both.find((r) => r.status === 409) as Response).text(), /being taken/);

    const sampling = await get(port, "/debug/profile/heap-sampling?seconds=1", token);
    assert.equal(sampling.status, 200);
    assert.match(sampling.headers.get("content-disposition") ?? "", /\.heapprofile"$/);
    const heap = (await sampling.json()) as {
      head: { callFrame: { functionName: string } };
      samples: unknown[];
    };
    assert.equal(heap.head.callFrame.functionName, "(root)");
    assert.ok(Array.isArray(heap.samples));

    const snapshot = await get(port, "/debug/profile/heap-snapshot", token);
    assert.equal(snapshot.status, 200);
    assert.match(snapshot.headers.get("content-disposition") ?? "", /\.heapsnapshot"$/);
    const body = await snapshot.text();
    assert.equal(Number(snapshot.headers.get("content-length")), Buffer.byteLength(body));
    const parsed = JSON.parse(body) as { snapshot: { meta: { node_fields: string[] } } };
    assert.ok(parsed.snapshot.meta.node_fields.includes("name"));

    // A caller that goes away stops its recording: a two-minute profile does not hold the
    // profiler, the next one is taken as soon as the server has seen the caller leave.
    const gone = new AbortController();
    const long = get(port, "/debug/profile/cpu?seconds=120", token, gone.signal);
    await sleep(300);
    gone.abort();
    await assert.rejects(long);
    let status = 409;
    for (let i = 0; i < 50 && status === 409; i++) {
      status = (await get(port, "/debug/profile/heap-sampling?seconds=1", token)).status;
      if (status === 409) await sleep(100);
    }
    assert.equal(status, 200);

    await Promise.all([stop(single), stop(off)]);
  });

  it("is off unless configured, from YAML booleans or the environment's words", () => {
    assert.deepEqual(readSettings({}).settings.profiling, { enabled: false, maxSeconds: 300 });
    const yaml = join(dataDir, "keel.yaml");
    writeFileSync(yaml, "profiling: { enabled: true, maxSeconds: 10 }\n");
    assert.deepEqual(readSettings({ KEEL_CONFIG: yaml }).settings.profiling, {
      enabled: true,
      maxSeconds: 10,
    });
    assert.equal(readSettings({ KEEL_PROFILING: "on" }).settings.profiling.enabled, true);
    assert.throws(
      () => readSettings({ KEEL_PROFILING: "maybe", KEEL_PROFILING_MAX_SECONDS: "0" }),
      /KEEL_PROFILING: "maybe" must be true or false; KEEL_PROFILING_MAX_SECONDS: "0" must be at least 1/,
    );
  });

  it("in cluster mode profiles a worker: the one asked for, or the first; the answer names it", async () => {
    const cluster = runServer({ ...env, KEEL_WORKERS: "2" });
    const port = await adminPortOf(cluster, "cluster started");
    for (let i = 0; i < 200; i++) {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200) break;
      await sleep(50);
    }
    const token = await admin;
    const second = await get(port, "/debug/profile/heap-sampling?seconds=1&worker=2", token);
    assert.equal(second.status, 200);
    assert.equal(second.headers.get("keel-worker"), "2");
    assert.match(
      second.headers.get("content-disposition") ?? "",
      /"keel-worker2-.*\.heapprofile"$/,
    );
    assert.ok(((await second.json()) as { head: unknown }).head !== undefined);

    const first = await get(port, "/debug/profile/cpu?seconds=1", token);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("keel-worker"), "1");
    assert.ok(((await first.json()) as { nodes: unknown[] }).nodes.length > 0);

    const missing = await get(port, "/debug/profile/cpu?seconds=1&worker=9", token);
    assert.equal(missing.status, 404);
    assert.equal(await missing.text(), "no worker 9 to profile; workers: 1, 2\n");
    assert.equal((await get(port, "/debug/profile/cpu?seconds=1")).status, 401);
    await stop(cluster);
  });
});
