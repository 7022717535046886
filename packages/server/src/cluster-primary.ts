import cluster, { type Worker } from "node:cluster";
import { availableParallelism } from "node:os";
import { createHs256Keyring } from "@keel/interceptors";
import { AggregatorRegistry } from "prom-client";
import { startAdminServer } from "./admin-server.ts";
import { serverUrls } from "./banner.ts";
import type { ServerConfig } from "./config.ts";
import { watchConfig } from "./config-reload.ts";
import { createProcessLogger } from "./process-logger.ts";
import { createProfileEndpoint } from "./profile-endpoint.ts";
import { takeProfileInWorker } from "./profile-relay.ts";
import { announce, signingKeysOf, warnIfGeneratedSecret } from "./serve.ts";

/**
 * Cluster mode: the primary forks workers that share the API port (the kernel spreads
 * connections), passes live events between them, serves the admin port for all of them (metrics
 * summed across workers, ready when every worker is), replaces a worker that dies, and on SIGTERM
 * or SIGINT stops every worker gracefully before exiting 0.
 */
export async function runPrimary(config: ServerConfig): Promise<void> {
  const count = config.workers === 0 ? availableParallelism() : config.workers;
  const { logger, format } = createProcessLogger({
    level: config.log.level,
    format: config.log.format,
    base: { service: "keel", role: "primary" },
    // It exits right after its last line.
    sync: true,
  });
  warnIfGeneratedSecret(config, logger);
  const ready = new Map<number, boolean>();
  // Workers that have reported their readiness once: they have started and listen for requests.
  const reported = new Set<number>();
  let stopping = false;
  // Workers take connections in turns: even load, whatever the kernel's preference.
  cluster.schedulingPolicy = cluster.SCHED_RR;

  const fork = () => {
    const worker = cluster.fork();
    ready.set(worker.id, false);
    worker.on("message", (message: { keel?: string; payload?: string; ready?: boolean }) => {
      if (message.keel === "event") {
        for (const other of Object.values(cluster.workers ?? {})) {
          if (other !== undefined && other.id !== worker.id && other.isConnected())
            other.send(message);
        }
      } else if (message.keel === "ready") {
        ready.set(worker.id, message.ready === true);
        reported.add(worker.id);
      }
    });
    return worker;
  };
  cluster.on("exit", (worker: Worker, code, signal) => {
    ready.delete(worker.id);
    reported.delete(worker.id);
    if (stopping) return;
    logger.error({ worker: worker.id, code, signal }, "worker died; starting another");
    fork();
  });
  for (let i = 0; i < count; i++) fork();

  const aggregator = new AggregatorRegistry();
  // The profiling routes verify admin tokens here: with the keys the workers sign with, rotated
  // with theirs when the configuration file changes.
  const keyring = createHs256Keyring({
    current: config.auth.secret,
    accepted: config.auth.acceptedSecrets,
  });
  const watcher =
    config.file === undefined || !config.profiling.enabled
      ? undefined
      : watchConfig({
          file: config.file,
          current: config.settings,
          logger: { info() {}, warn() {}, error() {} },
          apply: (next) => keyring.update(signingKeysOf(next, config)),
        });
  const admin = await startAdminServer({
    host: config.host,
    port: config.adminPort,
    metrics: async (_req, res) => {
      // Summed over workers; exemplars are per process, so the cluster serves Prometheus text.
      const text = await aggregator.clusterMetrics().catch((err: unknown) => {
        logger.error({ err }, "cannot collect metrics from the workers");
        throw err;
      });
      res.writeHead(200, { "content-type": aggregator.contentType }).end(text);
    },
    ready: () => !stopping && ready.size === count && [...ready.values()].every(Boolean),
    ...(config.profiling.enabled
      ? {
          routes: createProfileEndpoint({
            tokens: {
              secret: keyring,
              issuer: config.auth.issuer,
              audience: config.auth.audience,
            },
            maxSeconds: config.profiling.maxSeconds,
            take: (request) => takeProfileInWorker(request, (id) => reported.has(id)),
          }),
        }
      : {}),
  });
  logger.info({ workers: count, adminPort: admin.port }, "cluster started");
  const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  const scheme = config.tls === undefined ? "http" : "https";
  announce(
    serverUrls({
      apiUrl: `${scheme}://${host.includes(":") ? `[${host}]` : host}:${config.port}`,
      adminPort: admin.port,
      console: config.consoleEnabled,
    }),
    format,
    logger,
  );

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    watcher?.close();
    logger.info({ signal }, "stopping every worker");
    const workers = Object.values(cluster.workers ?? {}).filter(
      (w): w is Worker => w !== undefined,
    );
    const exited = workers.map(
      (w) =>
        new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once("exit", () => resolve()))),
    );
    for (const worker of workers) if (worker.isConnected()) worker.send({ keel: "shutdown" });
    // Whatever still runs after its grace period, and a margin, is killed.
    const limit = setTimeout(
      () => {
        for (const worker of workers) if (!worker.isDead()) worker.kill("SIGKILL");
      },
      config.shutdown.delayMs + config.shutdown.graceMs + 5000,
    );
    Promise.all(exited).then(async () => {
      clearTimeout(limit);
      await admin.close();
      logger.info("cluster stopped");
      process.exit(0);
    });
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
