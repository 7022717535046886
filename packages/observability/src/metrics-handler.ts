import type { IncomingMessage, ServerResponse } from "node:http";
import { Registry, type RegistryContentType } from "prom-client";

export interface MetricsHandlerOptions {
  /**
   * The registries served, for example those of `createServerMetrics` and `createClientMetrics`
   * and of other libraries; the order is the order of the output. A metric name found in more
   * than one (prom-client's default metrics, say) is served once, from the first. Each
   * registry's default labels are kept.
   */
  registries: Registry<RegistryContentType>[];
}

const openMetrics = Registry.OPENMETRICS_CONTENT_TYPE;
const prometheus = Registry.PROMETHEUS_CONTENT_TYPE;

/**
 * A Node.js request handler answering `GET /metrics` (and `HEAD`) in the format the scraper asks
 * for with `Accept`: OpenMetrics 1.0 with exemplars for `application/openmetrics-text` (what
 * Prometheus asks for first by default), else the Prometheus text format 0.0.4, which has no
 * exemplars. Other paths get 404.
 *
 * Both formats are printed from the same registries, whatever their own content type: prom-client
 * prints a registry in its one content type only, and printing it as OpenMetrics renames its
 * counters for good (it drops `_total` from each counter's name). So each scrape prints every
 * registry through a view that has the asked content type and presents each metric under a copy
 * of its name; the metrics themselves are never touched. Counters are `<name>_total` in both
 * formats, so a series has the same name whichever format was scraped.
 */
export function createMetricsHandler(
  options: MetricsHandlerOptions,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { registries } = options;
  return async (req, res) => {
    if (new URL(req.url ?? "/", "http://localhost").pathname !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
      res.end("not found: metrics are served at /metrics\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { "content-type": "text/plain; charset=utf-8", allow: "GET, HEAD" });
      res.end("method not allowed: use GET\n");
      return;
    }
    const contentType = negotiate(req.headers.accept);
    let body: string;
    try {
      body = await render(registries, contentType);
    } catch {
      // A failing collector; its message may say more than a scraper should see.
      res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      res.end("collecting the metrics failed\n");
      return;
    }
    res.writeHead(200, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
    res.end(req.method === "HEAD" ? undefined : body);
  };
}

/**
 * The format for an `Accept` header: the supported media range with the highest q-value, the
 * first of equals; Prometheus text when none is supported. Versions other than those printed
 * (OpenMetrics 1.0.0 or 0.0.1, text 0.0.4) are not supported.
 */
function negotiate(accept: string | undefined): RegistryContentType {
  let best: RegistryContentType = prometheus;
  let bestQ = 0;
  for (const range of (accept ?? "").split(",")) {
    const [type, ...params] = range.split(";").map((part) => part.trim().toLowerCase());
    let q = 1;
    let version: string | undefined;
    for (const param of params) {
      const [key, value] = param.split("=", 2);
      if (key === "q") q = Number(value);
      else if (key === "version") version = value;
    }
    const format =
      type === "application/openmetrics-text" &&
      (version === undefined || version === "1.0.0" || version === "0.0.1")
        ? openMetrics
        : (type === "text/plain" && (version === undefined || version === "0.0.4")) ||
            type === "text/*" ||
            type === "*/*"
          ? prometheus
          : undefined;
    if (format !== undefined && q > bestQ) {
      best = format;
      bestQ = q;
    }
  }
  return best;
}

/** What prom-client's `Registry` reads from a registered metric, its own classes and others alike. */
interface Printable {
  name: string;
  help: string;
  type: string;
  aggregator?: string;
  get(): Promise<{ name: string }>;
  getForPromString?(): Promise<{ name: string }>;
}

const eof = "# EOF\n";

async function render(
  registries: Registry<RegistryContentType>[],
  contentType: RegistryContentType,
): Promise<string> {
  const served = new Set<string>();
  const parts: string[] = [];
  for (const registry of registries) {
    const views: Printable[] = [];
    // getMetricsAsArray is typed without get(), which every registered metric has.
    for (const metric of registry.getMetricsAsArray() as unknown as Printable[]) {
      const view = renamed(metric, contentType);
      if (served.has(view.name)) continue;
      served.add(view.name);
      views.push(view);
    }
    if (views.length === 0) continue;
    // The registry itself, seen with another content type and metric list: its metrics() and the
    // printing it calls read both through `this`, and its default labels stay its own.
    const view = Object.create(registry, {
      contentType: { value: contentType },
      getMetricsAsArray: { value: () => views },
    }) as Registry<RegistryContentType>;
    parts.push(await view.metrics());
  }
  if (contentType === prometheus) return parts.length === 0 ? "\n" : parts.join("\n");
  return parts.map((part) => part.slice(0, -eof.length)).join("") + eof;
}

/**
 * The metric under the name its format needs. An OpenMetrics counter family is named without
 * `_total` (prom-client adds it to each sample), a Prometheus one with it; the base name is taken
 * from the metric's current name, with or without `_total` (prom-client may have dropped it).
 */
function renamed(metric: Printable, contentType: RegistryContentType): Printable {
  let name = metric.name;
  if (metric.type === "counter") {
    const base = name.endsWith("_total") ? name.slice(0, -"_total".length) : name;
    name = contentType === openMetrics ? base : `${base}_total`;
  }
  const view: Printable = {
    name,
    help: metric.help,
    type: metric.type,
    aggregator: metric.aggregator,
    get: async () => ({ ...(await metric.get()), name }),
  };
  const getForPromString = metric.getForPromString;
  if (getForPromString !== undefined) {
    view.getForPromString = async () => ({ ...(await getForPromString.call(metric)), name });
  }
  return view;
}
