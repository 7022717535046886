import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { dropSchema, freshSchema, postgresSkipReason, postgresUrl } from "@keel/store/testing";
import { parse } from "yaml";
import { adminPortOf, runServer } from "./testing/process.ts";
import { read, root } from "./testing/repo.ts";
import { findSystemTool } from "./testing/system-tool.ts";

const promtool = findSystemTool("promtool");
const postgresSkip = await postgresSkipReason();
const dir = mkdtempSync(join(tmpdir(), "keel-dashboards-"));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Dashboard {
  panels: { type: string; title: string; targets?: { expr: string }[] }[];
}
interface RuleFile {
  groups: { rules: { alert: string; expr: string }[] }[];
}

const dashboard = JSON.parse(read("deploy", "grafana", "keel-dashboard.json")) as Dashboard;
const rules = parse(read("deploy", "prometheus", "keel-alerts.yaml")) as RuleFile;

/** Every expression of the dashboard and the alerts, named after where it is. */
const expressions = [
  ...dashboard.panels.flatMap((panel) =>
    (panel.targets ?? []).map((t, i) => ({ where: `panel "${panel.title}" #${i}`, expr: t.expr })),
  ),
  ...(rules.groups[0]?.rules ?? []).map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })),
];

/** Grafana's variables replaced by what Prometheus itself accepts. */
const plain = (expr: string) =>
  expr.replaceAll("$__rate_interval", "5m").replaceAll(/"\$\w+"/g, '".+"');

const keywords = new Set(["and", "or", "unless", "bool", "offset", "by", "without", "inf", "nan"]);

/** The metric names a PromQL expression reads (not functions, labels, keywords or numbers). */
function metricNames(expr: string): string[] {
  const bare = plain(expr)
    .replaceAll(/"(?:[^"\\]|\\.)*"/g, "")
    .replaceAll(/\{[^}]*\}/g, "")
    .replaceAll(/\[[^\]]*\]/g, "")
    .replaceAll(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "");
  return [...bare.matchAll(/([A-Za-z_:][\w:]*)(\s*\()?/g)]
    .filter((m) => m[2] === undefined && !keywords.has((m[1] as string).toLowerCase()))
    .map((m) => m[1] as string);
}

function runPromtool(args: string[]) {
  const run = spawnSync(promtool.path as string, args, { encoding: "utf8", cwd: root });
  return { code: run.status, output: `${run.stdout}${run.stderr}` };
}

describe("deploy/grafana and deploy/prometheus", { skip: promtool.skip }, () => {
  it("the alert rules pass promtool check rules", () => {
    const checked = runPromtool(["check", "rules", "deploy/prometheus/keel-alerts.yaml"]);
    assert.equal(checked.code, 0, checked.output);
    assert.match(
      checked.output,
      new RegExp(`SUCCESS: ${rules.groups[0]?.rules.length} rules found`),
    );
  });

  it("every dashboard and alert expression is valid PromQL (promtool, as recording rules)", () => {
    assert.ok(expressions.length >= 20, `${expressions.length} expressions`);
    const file = join(dir, "expressions.yaml");
    writeFileSync(
      file,
      JSON.stringify({
        groups: [
          {
            name: "expressions",
            rules: expressions.map((e, i) => ({
              record: `keel:expression_${i}`,
              expr: plain(e.expr),
            })),
          },
        ],
      }),
    );
    const checked = runPromtool(["check", "rules", file]);
    assert.equal(checked.code, 0, checked.output);
    assert.match(checked.output, new RegExp(`SUCCESS: ${expressions.length} rules found`));
    // The check can fail: a broken expression is refused.
    writeFileSync(
      file,
      JSON.stringify({ groups: [{ name: "x", rules: [{ record: "x", expr: "sum by (" }] }] }),
    );
    assert.notEqual(runPromtool(["check", "rules", file]).code, 0);
  });

  /** The metric names a server started with `env` declares or samples on /metrics. */
  async function liveMetrics(env: Record<string, string>): Promise<Set<string>> {
    const server = runServer(env);
    const adminPort = await adminPortOf(server, "serving gRPC, gRPC-Web and Connect");
    const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    process.kill(server.child.pid as number, "SIGTERM");
    await server.exited;
    // A sample's name, or a family the server declares (# TYPE) with the series names of its
    // type: a labelled family such as GC durations by kind has no sample until its first event.
    const live = new Set<string>();
    for (const line of text.split("\n")) {
      const declared = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (declared !== null) {
        const [, name, type] = declared as unknown as [string, string, string];
        live.add(name);
        if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) live.add(name + s);
      } else if (line !== "" && !line.startsWith("#")) {
        live.add(line.split(/[{ ]/)[0] as string);
      }
    }
    return live;
  }

  /** The store's metrics, which a server registers only on PostgreSQL (it has a pool). */
  const postgresOnly = (name: string) => name.startsWith("keel_store_");

  it("every metric an expression reads is in a live server's /metrics (the store's only on PostgreSQL)", async () => {
    const live = await liveMetrics({ KEEL_DATA_DIR: dir });
    let onPostgres = 0;
    for (const { where, expr } of expressions) {
      const names = metricNames(expr);
      assert.ok(names.length > 0, `${where} reads no metric: ${expr}`);
      for (const name of names) {
        if (postgresOnly(name)) {
          onPostgres++;
          assert.equal(live.has(name), false, `${where}: ${name} on SQLite`);
        } else assert.ok(live.has(name), `${where} reads ${name}, not in /metrics`);
      }
    }
    assert.ok(onPostgres > 0, "no expression reads the store's metrics");
    // The check can fail: a name the server does not expose is caught.
    assert.deepEqual(metricNames('sum by (job) (rate(keel_shed_total{a="b"}[5m])) > 0'), [
      "keel_shed_total",
    ]);
    assert.equal(live.has("keel_shed_total"), false);
  });

  it("every metric an expression reads is in /metrics of a server on PostgreSQL", {
    skip: postgresSkip ?? false,
  }, async () => {
    const schema = freshSchema();
    after(() => dropSchema(schema));
    const live = await liveMetrics({
      KEEL_DATA_DIR: dir,
      KEEL_DATABASE_URL: postgresUrl,
      KEEL_DATABASE_SCHEMA: schema,
    });
    const names = expressions.flatMap(({ where, expr }) =>
      metricNames(expr).map((name) => ({ where, name })),
    );
    assert.ok(names.some(({ name }) => postgresOnly(name)));
    for (const { where, name } of names)
      assert.ok(live.has(name), `${where} reads ${name}, not in /metrics on PostgreSQL`);
  });
});
