import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer as createHttpServer } from "node:http";
import http2 from "node:http2";
import { type AddressInfo, connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { DescService, MessageInitShape } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { createTransport, createUserClient, type UserClient } from "@keel/clients";
import { Health, HealthCheckResponse_ServingStatus } from "@keel/gen/health/v1/health_pb";
import { OrderService } from "@keel/gen/order/v1/order_pb";
import { UserService, UserStatus, type UserStatusUpdateSchema } from "@keel/gen/user/v1/user_pb";
import { Deployment } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import {
  ConfigMap,
  type IEnvVar,
  type ISecretKeySelector,
  Secret,
  Service,
} from "kubernetes-models/v1";
import { parseAllDocuments } from "yaml";
import { loadConfig } from "./config.ts";
import { runServer, type ServerProcess, servingUrl } from "./testing/process.ts";
import { iterate, pushable, rejectsWith, take } from "./testing/rpc.ts";

// deploy/: the image, the Kubernetes manifests and the nginx config. Docker cannot run in CI, so
// the Dockerfile is checked line by line; the manifests are validated against Kubernetes' schemas;
// nginx.conf runs for real in front of two server processes.

const root = fileURLToPath(new URL("../../../", import.meta.url));
const deploy = join(root, "deploy");
const read = (...path: string[]) => readFileSync(join(root, ...path), "utf8");

// ---- Kubernetes -------------------------------------------------------------------------------

const models = [Deployment, Service, ConfigMap, Secret, HorizontalPodAutoscaler];
type Manifest = Record<string, unknown> & { apiVersion: string; kind: string };

/** Each YAML file of deploy/kubernetes, parsed: one document per file. */
function manifests(): Map<string, Manifest> {
  const dir = join(deploy, "kubernetes");
  const out = new Map<string, Manifest>();
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()) {
    const docs = parseAllDocuments(readFileSync(join(dir, file), "utf8"));
    assert.ok(Array.isArray(docs) && docs.length === 1, `${file}: expected one YAML document`);
    const [doc] = docs;
    assert.deepEqual(doc?.errors, [], `${file}: YAML errors`);
    out.set(file, doc?.toJS() as Manifest);
  }
  return out;
}

function model<T>(all: Map<string, Manifest>, file: string, kind: new (data: never) => T): T {
  const manifest = all.get(file);
  assert.ok(manifest, `deploy/kubernetes/${file} is missing`);
  return new kind(manifest as never);
}

describe("deploy/kubernetes", () => {
  const all = manifests();
  const deployment = model(all, "deployment.yaml", Deployment);
  const pod = deployment.spec?.template.spec;
  const container = pod?.containers[0];
  const configMap = model(all, "configmap.yaml", ConfigMap);
  const secret = model(all, "secret.yaml", Secret);
  const service = model(all, "service.yaml", Service);

  it("has only manifests that are valid for their kind's schema", () => {
    for (const [file, manifest] of all) {
      if (file === "kustomization.yaml") continue;
      const Model = models.find((m) => m.is(manifest));
      assert.ok(Model, `${file}: no model for ${manifest.apiVersion} ${manifest.kind}`);
      assert.doesNotThrow(() => new Model(manifest as never).validate(), `${file} is invalid`);
    }
  });

  it("lists every manifest in kustomization.yaml", () => {
    const kustomization = all.get("kustomization.yaml");
    assert.equal(kustomization?.kind, "Kustomization");
    const resources = kustomization?.resources;
    assert.ok(Array.isArray(resources));
    const others = [...all.keys()].filter((f) => f !== "kustomization.yaml");
    assert.deepEqual([...resources].sort(), others.sort());
  });

  it("runs two replicas, scaled on CPU by the HPA from there", () => {
    const hpa = model(all, "hpa.yaml", HorizontalPodAutoscaler);
    assert.equal(deployment.spec?.replicas, 2);
    assert.deepEqual(hpa.spec?.scaleTargetRef, {
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: deployment.metadata?.name,
    });
    assert.equal(hpa.spec?.minReplicas, deployment.spec?.replicas);
    assert.ok((hpa.spec?.maxReplicas ?? 0) > 2);
    assert.deepEqual(
      hpa.spec?.metrics?.map((m) => [m.resource?.name, m.resource?.target.type]),
      [["cpu", "Utilization"]],
    );
    // Utilization is relative to the request: without one the HPA cannot compute it.
    assert.ok(container?.resources?.requests?.cpu);
    assert.ok(container?.resources?.limits?.memory);
  });

  it("probes readiness with gRPC health on 9090 and liveness with /healthz on the admin port", () => {
    assert.deepEqual(
      container?.ports?.map((p) => [p.name, p.containerPort]),
      [
        ["grpc", 9090],
        ["admin", 9091],
      ],
    );
    assert.deepEqual(container?.readinessProbe?.grpc, { port: 9090, service: "" });
    assert.deepEqual(container?.startupProbe?.grpc, { port: 9090 });
    assert.deepEqual(container?.livenessProbe?.httpGet, { path: "/healthz", port: "admin" });
    assert.equal(configMap.data?.KEEL_PORT, "9090");
    assert.equal(configMap.data?.KEEL_ADMIN_PORT, "9091");
  });

  it("takes settings from the ConfigMap and secrets by reference from the Secret", () => {
    assert.deepEqual(container?.envFrom, [{ configMapRef: { name: configMap.metadata?.name } }]);
    for (const name of ["KEEL_JWT_SECRET", "KEEL_DATABASE_URL"]) {
      const variable: IEnvVar | undefined = container?.env?.find((e) => e.name === name);
      assert.equal(variable?.value, undefined, `${name} must not be written into the Deployment`);
      const ref: ISecretKeySelector | undefined = variable?.valueFrom?.secretKeyRef;
      assert.equal(ref?.name, secret.metadata?.name, name);
      assert.ok(Object.hasOwn(secret.stringData ?? {}, ref?.key ?? ""), `${name}: no such key`);
      assert.equal(configMap.data?.[name], undefined, `${name} belongs in the Secret`);
    }
  });

  it("makes a production configuration the server accepts, and refuses the placeholder secret", () => {
    const settings = { NODE_ENV: "production", ...configMap.data };
    const fromSecret = (key: string) => secret.stringData?.[key] ?? "";
    const env = {
      ...settings,
      KEEL_JWT_SECRET: fromSecret("jwt-secret"),
      KEEL_DATABASE_URL: fromSecret("database-url"),
    };
    assert.throws(() => loadConfig(env), /KEEL_JWT_SECRET: must be at least 32 characters/);
    assert.doesNotThrow(() =>
      loadConfig({ ...env, KEEL_JWT_SECRET: "a real secret of at least 32 characters" }),
    );
    // Stopping takes the shutdown delay plus the grace period; Kubernetes kills after its own.
    const stopMs =
      Number(configMap.data?.KEEL_SHUTDOWN_DELAY_MS ?? 0) +
      Number(configMap.data?.KEEL_SHUTDOWN_GRACE_MS ?? 10_000);
    assert.ok((pod?.terminationGracePeriodSeconds ?? 30) * 1000 >= stopMs + 10_000);
  });

  it("turns service links off: their KEEL_SERVER_* variables would stop the server", () => {
    assert.equal(pod?.enableServiceLinks, false);
    // What Kubernetes would inject for the Service (docker links style): unknown KEEL_* names.
    const prefix = (service.metadata?.name ?? "").toUpperCase().replaceAll("-", "_");
    const env = {
      ...configMap.data,
      KEEL_JWT_SECRET: "a real secret of at least 32 characters",
      [`${prefix}_SERVICE_HOST`]: "10.0.0.10",
      [`${prefix}_PORT`]: "tcp://10.0.0.10:9090",
    };
    assert.match(prefix, /^KEEL_/);
    assert.throws(() => loadConfig(env), /unknown setting/);
  });

  it("runs as a non-root user on a read-only root filesystem, writing only to emptyDirs", () => {
    assert.equal(pod?.securityContext?.runAsNonRoot, true);
    assert.ok((pod?.securityContext?.runAsUser ?? 0) > 0);
    assert.equal(container?.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(container?.securityContext?.allowPrivilegeEscalation, false);
    const dataDir = configMap.data?.KEEL_DATA_DIR;
    const mount = container?.volumeMounts?.find((m) => m.mountPath === dataDir);
    assert.ok(mount, `KEEL_DATA_DIR (${dataDir}) must be a mounted volume`);
    const volume = pod?.volumes?.find((v) => v.name === mount.name);
    assert.ok(volume?.emptyDir);
  });

  it("exposes the API port as HTTP/2 cleartext and the admin port on a ClusterIP Service", () => {
    assert.equal(service.spec?.type, "ClusterIP");
    assert.deepEqual(service.spec?.selector, deployment.spec?.selector.matchLabels);
    assert.deepEqual(
      service.spec?.ports?.map((p) => [p.name, p.port, p.targetPort, p.appProtocol]),
      [
        ["grpc", 9090, "grpc", "kubernetes.io/h2c"],
        ["admin", 9091, "admin", "http"],
      ],
    );
  });
});

// ---- Dockerfile -------------------------------------------------------------------------------

interface Instruction {
  keyword: string;
  args: string;
  /** 0 before the first FROM, then 1, 2, … */
  stage: number;
}

/** The Dockerfile's instructions, continuation lines joined and comments dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = 0;
  let current = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("#") || (line === "" && current === "")) continue;
    if (line.endsWith("\\")) {
      current += `${line.slice(0, -1).trim()} `;
      continue;
    }
    current += line;
    const [, keyword = "", args = ""] = /^(\S+)\s*(.*)$/.exec(current) ?? [];
    if (keyword.toUpperCase() === "FROM") stage++;
    out.push({ keyword: keyword.toUpperCase(), args, stage });
    current = "";
  }
  return out;
}

const instructions = parseDockerfile(read("deploy", "Dockerfile"));
const froms = instructions.filter((i) => i.keyword === "FROM");
const runtime = froms.length;
const inStage = (stage: number, keyword: string) =>
  instructions.filter((i) => i.stage === stage && i.keyword === keyword).map((i) => i.args);

/** The runtime stage's HEALTHCHECK command, in exec form. */
function healthcheck(): string[] {
  const check = /^(?:--\S+\s+)*CMD (\[.*\])$/.exec(inStage(runtime, "HEALTHCHECK")[0] ?? "");
  return JSON.parse(check?.[1] ?? "[]") as string[];
}

/** Runs the HEALTHCHECK's script against an admin port on 127.0.0.1; its exit code. */
async function runHealthcheck(adminPort: number): Promise<number> {
  const script = (healthcheck()[2] ?? "").replace(":9091/", `:${adminPort}/`);
  const child = spawn(process.execPath, ["-e", script], { stdio: "ignore" });
  const [code] = (await once(child, "exit")) as [number];
  return code;
}

describe("deploy/Dockerfile", () => {
  it("builds on node:<.nvmrc>-bookworm-slim in two stages", () => {
    assert.ok(froms.length >= 2, "multi-stage: a build stage and a runtime stage");
    for (const from of froms)
      assert.match(from.args, /^node:\$\{NODE_VERSION\}-bookworm-slim AS \w+$/);
    const version = inStage(0, "ARG").find((a) => a.startsWith("NODE_VERSION="));
    assert.equal(version, `NODE_VERSION=${read(".nvmrc").trim()}`);
  });

  it("installs with the pinned pnpm and the frozen lockfile, builds, then deploys production only", () => {
    const runs = inStage(1, "RUN").join("\n");
    assert.match(runs, /corepack enable pnpm/);
    // corepack takes pnpm's version from packageManager: package.json must be there first.
    const copies = instructions.filter((i) => i.keyword === "COPY" && i.stage === 1);
    assert.match(copies[0]?.args ?? "", /^package\.json /);
    assert.match(runs, /pnpm install --frozen-lockfile/);
    assert.match(runs, /pnpm turbo run build/);
    assert.match(runs, /pnpm --filter @keel\/server deploy --prod --legacy( --offline)? \/out$/m);
  });

  it("runs only the deployed output, as a non-root user, in production mode", () => {
    const env = inStage(runtime, "ENV").join(" ");
    assert.match(env, /\bNODE_ENV=production\b/);
    const user = inStage(runtime, "USER")[0] ?? "root";
    assert.match(
      user,
      /^[1-9]\d*(:[1-9]\d*)?$/,
      "a numeric non-root user (runAsNonRoot checks it)",
    );
    // Nothing is installed or built in the runtime stage; everything comes from /out.
    for (const copy of inStage(runtime, "COPY")) assert.match(copy, /^--from=build \/out\//);
    assert.doesNotMatch(inStage(runtime, "RUN").join("\n"), /\b(pnpm|npm|corepack|yarn)\b/);
    const copied = inStage(runtime, "COPY").map((c) => c.split(/\s+/).at(-1));
    assert.deepEqual(copied.sort(), ["./dist", "./node_modules", "./package.json"]);
  });

  it("starts the server's bin, exposes 9090 and 9091, stops on SIGTERM, checks /readyz", () => {
    const pkg = JSON.parse(read("packages", "server", "package.json")) as {
      bin: Record<string, string>;
    };
    const main = pkg.bin["keel-server"]?.replace(/^\.\//, "");
    assert.deepEqual(JSON.parse(inStage(runtime, "ENTRYPOINT")[0] ?? "[]"), ["node", main]);
    assert.deepEqual(inStage(runtime, "EXPOSE"), ["9090 9091"]);
    assert.deepEqual(inStage(runtime, "STOPSIGNAL"), ["SIGTERM"]);
    const [node, flag, script] = healthcheck();
    assert.deepEqual([node, flag], ["node", "-e"]);
    assert.match(script ?? "", /http:\/\/127\.0\.0\.1:9091\/readyz/);
  });

  it("has a HEALTHCHECK that passes only while /readyz answers 2xx", async () => {
    let ready = false;
    const admin = createHttpServer((req, res) => {
      res.statusCode = req.url === "/readyz" && ready ? 200 : 503;
      res.end();
    }).listen(0, "127.0.0.1");
    await once(admin, "listening");
    const { port } = admin.address() as AddressInfo;
    assert.equal(await runHealthcheck(port), 1);
    ready = true;
    assert.equal(await runHealthcheck(port), 0);
    admin.close();
    await once(admin, "close");
    assert.equal(await runHealthcheck(port), 1, "nothing listening");
  });

  it("has a context allow-list that keeps local data, .git and node_modules out", () => {
    const rules = read(".dockerignore")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    assert.equal(rules[0], "*", "everything is excluded unless allowed");
    for (const allowed of rules.filter((r) => r.startsWith("!"))) {
      assert.ok(existsSync(join(root, allowed.slice(1))), `${allowed}: no such path`);
      assert.doesNotMatch(allowed, /^!(data|\.git|toolchain)\b/);
    }
    assert.ok(rules.includes("**/node_modules"));
    assert.ok(rules.includes("**/dist"));
  });

  it("deploys every package the server imports at run time (pnpm deploy --prod skips the rest)", () => {
    const pkg = JSON.parse(read("packages", "server", "package.json")) as {
      dependencies: Record<string, string>;
    };
    const missing = new Set<string>();
    for (const file of runtimeSources(join(root, "packages", "server", "src"))) {
      for (const name of importedPackages(readFileSync(file, "utf8"))) {
        if (!(name in pkg.dependencies)) missing.add(`${name} (${file.slice(root.length)})`);
      }
    }
    assert.deepEqual(
      [...missing],
      [],
      "move these to dependencies in packages/server/package.json",
    );
  });
});

/** The server's .ts files that run in production: no tests, no test helpers. */
function runtimeSources(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && !f.startsWith("testing"))
    .map((f) => join(dir, f));
}

/** Packages a module imports at run time (type-only imports are erased). */
function importedPackages(source: string): Set<string> {
  const names = new Set<string>();
  const specifiers = [
    ...source.matchAll(/^\s*(?:import|export)(\s+type)?\s[^;]*?\bfrom\s+"([^"]+)"/gm),
  ]
    .filter((m) => m[1] === undefined)
    .map((m) => m[2] ?? "");
  specifiers.push(...[...source.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g)].map((m) => m[1] ?? ""));
  for (const spec of specifiers) {
    if (spec.startsWith(".") || spec.startsWith("node:")) continue;
    const parts = spec.split("/");
    names.add(spec.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? spec));
  }
  return names;
}

// ---- Probes: the manifests and the image against the real server --------------------------------

describe("the probes of deployment.yaml and the image's HEALTHCHECK, on a real instance", () => {
  const dir = mkdtempSync(join(tmpdir(), "keel-probes-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("answers them all: gRPC health on the API port, /healthz and /readyz on the admin port", async () => {
    const container = model(manifests(), "deployment.yaml", Deployment).spec?.template.spec
      ?.containers[0];
    const adminPort = await freePort();
    const server = runServer({
      KEEL_DATA_DIR: dir,
      KEEL_ADMIN_PORT: String(adminPort),
      KEEL_PASSWORD_COST: "10",
    });
    // What the kubelet's grpc probe asks: Check for the probe's service, over HTTP/2 cleartext.
    const health = createClient(Health, createTransport({ baseUrl: await servingUrl(server) }));
    const service = container?.readinessProbe?.grpc?.service ?? "";
    const { status } = await health.check({ service });
    assert.equal(status, HealthCheckResponse_ServingStatus.SERVING);
    for (const path of [container?.livenessProbe?.httpGet?.path, "/readyz"]) {
      const res = await fetch(`http://127.0.0.1:${adminPort}${path}`);
      assert.equal(res.status, 200, path);
    }
    assert.equal(await runHealthcheck(adminPort), 0);
    process.kill(server.child.pid as number, "SIGTERM");
    assert.equal((await server.exited).code, 0);
  });
});

// ---- nginx in front of two instances ----------------------------------------------------------

/** The nginx binary (Debian puts it in /usr/sbin, often not on PATH), or why the tests skip. */
function findNginx(): { nginx: string; skip?: undefined } | { nginx?: undefined; skip: string } {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin"];
  const nginx = dirs
    .filter((d) => d !== "")
    .map((d) => join(d, "nginx"))
    .find((p) => existsSync(p));
  if (nginx !== undefined) return { nginx };
  const reason = "nginx is not installed (scripts/ci-system-deps.sh installs it)";
  if (process.env.CI === "true") throw new Error(`${reason}; CI must run the nginx tests.`);
  return { skip: reason };
}

/** A free port of 127.0.0.1, released again for nginx to bind. */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, "close");
  return port;
}

/** deploy/nginx/nginx.conf with the test's port and upstreams, and temp files in `dir`. */
function nginxConfig(port: number, upstreams: string[], dir: string): string {
  let conf = read("deploy", "nginx", "nginx.conf");
  const replaceOnce = (pattern: RegExp, by: string) => {
    const found = conf.match(new RegExp(pattern.source, "gm"))?.length ?? 0;
    assert.equal(found, 1, `nginx.conf: expected ${pattern} once, found it ${found} times`);
    conf = conf.replace(pattern, by);
  };
  replaceOnce(/listen 8080 http2;/, `listen 127.0.0.1:${port} http2;`);
  replaceOnce(
    /^( *)server keel-1:9090;\n *server keel-2:9090;$/m,
    upstreams.map((u) => `$1server ${u};`).join("\n"),
  );
  // Debian's nginx keeps temp files in /var/lib/nginx, which only root may write to.
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((t) => `  ${t}_temp_path ${join(dir, t)};`)
    .join("\n");
  replaceOnce(/^http \{$/m, `http {\n${temp}`);
  // A file the test reads: nginx cannot open /dev/stdout when it is a socket, as Node's pipes are.
  replaceOnce(/access_log \/dev\/stdout keel;/, `access_log ${join(dir, "access.log")} keel;`);
  return conf;
}

/** One line of nginx's access log (log_format keel). */
interface AccessLogEntry {
  request_id: string;
  path: string;
  status: number;
  grpc_status: string;
  upstream: string;
}

interface Nginx {
  /** The access log line of a request, once nginx wrote it. */
  logged(requestId: string): Promise<AccessLogEntry>;
  stop(): Promise<void>;
}

/**
 * Runs nginx in the foreground in its own process group, with `conf` and its pid, logs and temp
 * files in `dir`, and waits until it accepts connections on `port`.
 */
async function startNginx(nginx: string, dir: string, conf: string, port: number): Promise<Nginx> {
  const path = join(dir, "nginx.conf");
  writeFileSync(path, conf);
  const child = spawn(
    nginx,
    ["-p", dir, "-c", path, "-e", "stderr", "-g", `daemon off; pid ${join(dir, "nginx.pid")};`],
    { stdio: ["ignore", "ignore", "pipe"], detached: true },
  );
  // Even if the test process dies before its `after` hooks: never leave nginx running.
  const kill = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  };
  process.once("exit", kill);
  const exited = once(child, "exit");
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });

  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    const socket = connect(port, "127.0.0.1");
    const connected = await new Promise<boolean>((resolve) => {
      socket.once("connect", () => resolve(true)).once("error", () => resolve(false));
    });
    socket.destroy();
    if (connected) break;
    if (Date.now() > deadline) throw new Error(`nginx is not listening on ${port}: ${stderr}`);
    await sleep(50);
  }
  const accessLog = join(dir, "access.log");
  return {
    logged: (requestId) =>
      eventually(`nginx's log line of ${requestId}`, () =>
        readFileSync(accessLog, "utf8")
          .split("\n")
          .filter((line) => line !== "")
          .map((line) => JSON.parse(line) as AccessLogEntry)
          .find((e) => e.request_id === requestId),
      ),
    async stop() {
      process.off("exit", kill);
      if (child.exitCode !== null) return;
      // TERM: fast shutdown, open streams included. KILL if that takes too long.
      if (child.pid !== undefined) process.kill(-child.pid, "SIGTERM");
      const timer = setTimeout(kill, 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `find` until it returns something. */
async function eventually<T>(what: string, find: () => T | undefined): Promise<T> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The JSON log lines a server writes from now on (servingUrl has read those before). */
function followLogs(server: ServerProcess): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  const stdout = server.child.stdout as NodeJS.ReadableStream;
  createInterface({ input: stdout }).on("line", (line) => {
    if (line.startsWith("{")) lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  stdout.resume();
  return lines;
}

interface Instance {
  name: string;
  server: ServerProcess;
  env: Record<string, string>;
  /** host:port, as nginx names it in $upstream_addr. */
  upstream: string;
  url: string;
  logs: Record<string, unknown>[];
}

describe("deploy/nginx/nginx.conf", () => {
  const conf = read("deploy", "nginx", "nginx.conf");

  it("lifts the body limit for exactly the client-streaming and bidi methods", () => {
    const location = /location ~ (\S+) \{\s*client_max_body_size 0;/.exec(conf);
    assert.ok(location?.[1], "nginx.conf: no location with client_max_body_size 0");
    const streaming = new RegExp(location[1]);
    const services: DescService[] = [UserService, OrderService];
    for (const method of services.flatMap((s) => s.methods)) {
      const path = `/${method.parent.typeName}/${method.name}`;
      const clientStreams = ["client_streaming", "bidi_streaming"].includes(method.methodKind);
      assert.equal(streaming.test(path), clientStreams, path);
    }
  });

  it("keeps silent streams open for an hour in both directions", () => {
    for (const directive of ["grpc_read_timeout", "grpc_send_timeout", "client_body_timeout"]) {
      assert.match(conf, new RegExp(`^\\s*${directive} 1h;$`, "m"), directive);
    }
  });
});

const found = findNginx();
const password = "correct horse battery";

describe("nginx (deploy/nginx/nginx.conf) in front of two instances", {
  skip: found.skip ?? false,
}, () => {
  const secret = "one secret shared by both instances, 32+ characters";
  const dir = mkdtempSync(join(tmpdir(), "keel-nginx-"));
  // Run as root, nginx's workers are `nobody`: they must reach their temp directories.
  chmodSync(dir, 0o755);
  let instances: Instance[] = [];
  let proxy: Nginx | undefined;
  let baseUrl: string;
  let token: string;
  let users: UserClient;

  before(async () => {
    // Each instance has its own SQLite database. Both are seeded alike, directly: user 1 names its
    // instance (so an answer tells which instance gave it), user 2 is the same on both.
    instances = await Promise.all(
      ["a", "b"].map(async (name) => {
        const env = {
          KEEL_DATA_DIR: join(dir, name),
          KEEL_JWT_SECRET: secret,
          KEEL_PASSWORD_COST: "10",
          KEEL_ADMIN_PORT: "0",
          // A log line for every call, OK ones included: the tests look for their request ids.
          KEEL_LOG_LEVEL: "debug",
        };
        const server = runServer(env);
        const url = await servingUrl(server);
        return { name, server, env, url, upstream: new URL(url).host, logs: followLogs(server) };
      }),
    );
    const [first] = instances;
    assert.ok(first);
    const minted = await runServer(first.env, ["token", "--user-id", "1", "--roles", "admin"])
      .exited;
    assert.equal(minted.code, 0, minted.stderr);
    token = minted.stdout.trim();
    for (const instance of instances) {
      const direct = createUserClient({ baseUrl: instance.url, token });
      for (const username of [`instance-${instance.name}`, "shared"]) {
        await direct.createUser({ username, email: `${username}@example.com`, password });
      }
      const seeded = await direct.batchUpdateUsers(
        iterate([{ userId: 2n, user: { tags: ["seeded"] }, updateMask: { paths: ["tags"] } }]),
      );
      assert.equal(seeded.updatedCount, 1);
    }

    const port = await freePort();
    const upstreams = instances.map((i) => i.upstream);
    proxy = await startNginx(found.nginx ?? "", dir, nginxConfig(port, upstreams, dir), port);
    baseUrl = `http://127.0.0.1:${port}`;
    users = createUserClient({ baseUrl, token });
  });

  after(async () => {
    await proxy?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("passes unary calls: CreateUser and GetUser", async () => {
    const { user } = await users.createUser({
      username: "via-nginx",
      email: "via-nginx@example.com",
      password,
    });
    assert.equal(user?.username, "via-nginx");
    const { user: shared } = await users.getUser({ userId: 2n });
    assert.equal(shared?.username, "shared");
  });

  it("balances calls over both instances, as its access log and the answers agree", async () => {
    const nameOf = new Map(instances.map((i) => [i.upstream, `instance-${i.name}`]));
    const answeredBy = new Set<string>();
    for (let n = 0; n < 6; n++) {
      const requestId = `balance-${n}`;
      const { user } = await users.getUser(
        { userId: 1n },
        { headers: { "x-request-id": requestId } },
      );
      const entry = await proxy?.logged(requestId);
      assert.equal(user?.username, nameOf.get(entry?.upstream ?? ""), `call ${n}`);
      answeredBy.add(user?.username ?? "");
    }
    assert.deepEqual([...answeredBy].sort(), ["instance-a", "instance-b"]);
  });

  it("keeps the caller's x-request-id, and gives calls without one nginx's", async () => {
    const seen: (string | null)[] = [];
    const onHeader = (headers: Headers) => seen.push(headers.get("x-request-id"));
    await users.getUser({ userId: 2n }, { headers: { "x-request-id": "caller-chosen" }, onHeader });
    await users.getUser({ userId: 2n }, { onHeader });
    const [kept, made] = seen;
    assert.equal(kept, "caller-chosen");
    assert.match(made ?? "", /^[0-9a-f]{32}$/);
    // The instance logged the id nginx made, and so did nginx.
    assert.equal((await proxy?.logged(made ?? ""))?.path, "/user.v1.UserService/GetUser");
    await eventually("the instance's log line", () =>
      instances.flatMap((i) => i.logs).find((l) => l.request_id === made),
    );
  });

  it("passes a server stream, and the client's cancel on to the instance", async () => {
    const requestId = "activities-then-cancel";
    const controller = new AbortController();
    const activities = users
      .streamUserActivities(
        { userId: 2n },
        { signal: controller.signal, timeoutMs: 0, headers: { "x-request-id": requestId } },
      )
      [Symbol.asyncIterator]();
    const history = await take(activities, 2);
    assert.deepEqual(
      history.map((a) => a.action),
      ["user.created", "user.updated"],
    );
    controller.abort();
    await rejectsWith(activities.next(), Code.Canceled);
    // nginx reset its stream to the instance, which ended the call as cancelled.
    assert.ok(await proxy?.logged(requestId));
    const line = await eventually("the instance's log line", () =>
      instances.flatMap((i) => i.logs).find((l) => l.request_id === requestId),
    );
    assert.equal(line.code, "Canceled");
  });

  it("passes a client stream: BatchUpdateUsers", async () => {
    const result = await users.batchUpdateUsers(
      iterate([
        { userId: 2n, user: { metadata: { via: "nginx" } }, updateMask: { paths: ["metadata"] } },
        { userId: 2n, user: { tags: ["seeded", "batched"] }, updateMask: { paths: ["tags"] } },
        { userId: 999n, user: { tags: ["nobody"] }, updateMask: { paths: ["tags"] } },
      ]),
    );
    assert.equal(result.updatedCount, 2);
    assert.equal(result.errors.length, 1);
    assert.match(result.errors[0] ?? "", /^update #3 \(user_id=999\)/);
  });

  it("passes client streams of more than 4 MiB in all, and refuses a unary call that big", async () => {
    // Five messages of 1 MiB (each refused by validation, which does not end the stream).
    const big = { userId: 2n, user: { metadata: { big: "x".repeat(1 << 20) } } };
    const result = await users.batchUpdateUsers(
      iterate([big, big, big, big, big, { userId: 2n, user: { tags: ["seeded"] } }]),
    );
    assert.deepEqual([result.updatedCount, result.errors.length], [1, 5]);

    // Refused by nginx or by the instance, whichever reads enough of it first.
    const roomy = createUserClient({ baseUrl, token, maxMessageBytes: 8 << 20 });
    await rejectsWith(
      roomy.getUser({ userId: 2n, fields: ["x".repeat(5 << 20)] }),
      Code.ResourceExhausted,
    );
  });

  it("answers its own refusals with a gRPC status: 413 is RESOURCE_EXHAUSTED", async () => {
    // A body announced too large is refused before nginx reads it, never reaching an instance.
    const session = http2.connect(baseUrl);
    try {
      const request = session.request({
        ":method": "POST",
        ":path": "/user.v1.UserService/GetUser",
        "content-type": "application/grpc",
        "content-length": String(5 << 20),
        te: "trailers",
      });
      const [headers] = (await once(request, "response")) as [http2.IncomingHttpHeaders];
      request.destroy();
      assert.equal(headers[":status"], 200);
      assert.equal(headers["grpc-status"], "8");
      assert.equal(headers["grpc-message"], "request larger than 4 MiB");
      assert.match(String(headers["x-request-id"]), /^[0-9a-f]{32}$/);
    } finally {
      session.close();
    }
  });

  it("passes Connect and gRPC-Web over HTTP/2 as well", async () => {
    for (const protocol of ["connect", "grpc-web"] as const) {
      const client = createUserClient({ baseUrl, token, protocol });
      assert.equal((await client.getUser({ userId: 2n })).user?.username, "shared", protocol);
      const controller = new AbortController();
      const activities = client
        .streamUserActivities({ userId: 2n }, { signal: controller.signal, timeoutMs: 0 })
        [Symbol.asyncIterator]();
      assert.equal((await take(activities, 1))[0]?.action, "user.created", protocol);
      controller.abort();
    }
  });

  it("passes a bidi stream: SyncUserStatus follows and updates in one call", async () => {
    const out = pushable<MessageInitShape<typeof UserStatusUpdateSchema>>();
    const sync = users.syncUserStatus(out, { timeoutMs: 0 })[Symbol.asyncIterator]();
    out.push({ userId: 2n });
    assert.equal((await take(sync, 1))[0]?.status, UserStatus.ACTIVE);
    // Answers arrive while the client still sends: nginx buffers neither direction.
    // An update is not echoed to its sender; following again answers the status it set.
    out.push({ userId: 2n, status: UserStatus.SUSPENDED });
    out.push({ userId: 2n });
    assert.equal((await take(sync, 1))[0]?.status, UserStatus.SUSPENDED);
    out.push({ userId: 2n, status: UserStatus.ACTIVE });
    out.end();
    assert.equal((await sync.next()).done, true);
  });

  // Last: it stops the instances.
  it("answers UNAVAILABLE itself when no instance answers", async () => {
    for (const { server } of instances) {
      process.kill(server.child.pid as number, "SIGKILL");
      await server.exited;
    }
    await rejectsWith(
      users.getUser({ userId: 2n }),
      Code.Unavailable,
      /^no keel-server instance answered$/,
    );
  });
});
