import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { buildAlertRules, buildDashboard, deployFiles, renderDeployFiles } from "./deploy-files.ts";
import { alerts, rows } from "./signals.ts";

const root = new URL("../../../../", import.meta.url);

describe("the generated dashboard and alert rules", () => {
  it("are committed as the generator writes them (pnpm --filter @keel/observability generate:deploy)", () => {
    const text = renderDeployFiles();
    for (const key of Object.keys(deployFiles) as (keyof typeof deployFiles)[]) {
      assert.equal(
        readFileSync(new URL(deployFiles[key], root), "utf8"),
        text[key],
        `${deployFiles[key]} differs from what the generator writes: run generate:deploy`,
      );
    }
  });

  it("hold a panel for each signal and a rule for each alert, every query on the Prometheus data source", () => {
    const dashboard = buildDashboard() as {
      panels: { type: string; title: string; targets?: { expr: string; refId: string }[] }[];
    };
    const panels = dashboard.panels.filter((p) => p.type === "timeseries");
    assert.deepEqual(
      panels.map((p) => p.title),
      rows.flatMap((r) => r.panels.map((p) => p.title)),
    );
    assert.deepEqual(
      dashboard.panels.filter((p) => p.type === "row").map((p) => p.title),
      rows.map((r) => r.title),
    );
    for (const panel of panels) assert.ok((panel.targets ?? []).length > 0, panel.title);
    const rules = buildAlertRules() as { groups: { rules: { alert: string }[] }[] };
    assert.deepEqual(
      rules.groups[0]?.rules.map((r) => r.alert),
      alerts.map((a) => a.alert),
    );
  });

  it("refuse a panel or an alert that reads a metric no definition provides", () => {
    const panel = {
      title: "Shed calls",
      description: "",
      unit: "reqps",
      queries: [{ expr: "rate(keel_shed_total[5m])", legend: "" }],
      metrics: ["keel_shed_total"],
    };
    assert.throws(
      () => buildDashboard([{ title: "Shedding", panels: [panel] }]),
      /"Shed calls" reads keel_shed_total, which no metric defines/,
    );
    assert.throws(
      () =>
        buildAlertRules([
          { ...(alerts[0] as (typeof alerts)[0]), alert: "Pool", metrics: ["pg_pool_waiting"] },
        ]),
      /"Pool" reads pg_pool_waiting/,
    );
  });
});
