/** Where a started server answers, for people and for the "ready" log line. */
export interface ServerUrls {
  /** The API: gRPC, gRPC-Web, Connect and REST. */
  api: string;
  /** The API console page; undefined when it is off. */
  console: string | undefined;
  /** Prometheus metrics on the admin port; undefined without one. */
  metrics: string | undefined;
  /** Liveness on the admin port (readiness is `/readyz` beside it). */
  health: string | undefined;
  /** Readiness on the admin port. */
  ready: string | undefined;
}

export interface ServerUrlsOptions {
  /** The API's base URL, as the server reports it (`http://127.0.0.1:9090`). */
  apiUrl: string;
  /** The admin port; undefined when this process has none. */
  adminPort: number | undefined;
  /** Whether /console is served. */
  console: boolean;
}

/** The URLs of a started server; the admin port listens on the API's host, over plain HTTP. */
export function serverUrls(options: ServerUrlsOptions): ServerUrls {
  const api = new URL(options.apiUrl);
  const admin =
    options.adminPort === undefined ? undefined : `http://${api.hostname}:${options.adminPort}`;
  return {
    api: options.apiUrl,
    console: options.console ? `${options.apiUrl}/console` : undefined,
    metrics: admin === undefined ? undefined : `${admin}/metrics`,
    health: admin === undefined ? undefined : `${admin}/healthz`,
    ready: admin === undefined ? undefined : `${admin}/readyz`,
  };
}

/** The lines a person starting the server reads first: what is where, and how to stop it. */
export function formatBanner(urls: ServerUrls): string {
  const rows: [string, string][] = [
    ["API", `${urls.api}  (gRPC, gRPC-Web, Connect; REST under /api; grpc.health.v1)`],
  ];
  if (urls.console !== undefined) rows.push(["console", urls.console]);
  if (urls.metrics !== undefined) rows.push(["metrics", urls.metrics]);
  if (urls.health !== undefined) {
    rows.push(["health", `${urls.health} (live)  ${urls.ready ?? ""} (ready)`.trimEnd()]);
  }
  const lines = rows.map(([name, value]) => `  ${name.padEnd(8)} ${value}`);
  return `\nkeel is ready\n${lines.join("\n")}\n  Ctrl-C stops it; ./dev keel --help calls it.\n\n`;
}
