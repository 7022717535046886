import * as http from "node:http";
import type { AddressInfo } from "node:net";

export interface AdminServerOptions {
  host: string;
  /** Default 9091; 0 picks a free port. */
  port: number;
  /** Answers GET /metrics (Prometheus text, or OpenMetrics when asked for). */
  metrics: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;
  /** Whether the server should receive traffic: serving, database reachable, not shutting down. */
  ready: () => boolean;
  /** More routes (profiling): answers and returns true for its paths, false for others. */
  routes?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean;
}

export interface AdminServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The operators' port, apart from the API: `/metrics` for Prometheus, `/healthz` (the process is
 * alive and its event loop answers) and `/readyz` (200 when it should get traffic, 503 when not)
 * for Kubernetes probes and load balancers.
 */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res
        .writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" })
        .end("method not allowed\n");
      return;
    }
    if (options.routes?.(req, res)) return;
    switch (path) {
      case "/metrics":
        options.metrics(req, res).catch(() => {
          if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
          res.end("metrics unavailable\n");
        });
        return;
      case "/healthz":
        res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
        return;
      case "/readyz": {
        const ready = options.ready();
        res
          .writeHead(ready ? 200 : 503, { "content-type": "text/plain" })
          .end(ready ? "ready\n" : "not ready\n");
        return;
      }
      default:
        res
          .writeHead(404, { "content-type": "text/plain" })
          .end("not found: try /metrics, /healthz or /readyz\n");
    }
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
