import type { ScenarioResult } from "./runner.ts";
import type { Variant } from "./scenarios.ts";

const colors: Record<Variant["kind"], string> = {
  keel: "#3366cc",
  engine: "#9467bd",
  "grpc-js": "#2ca02c",
  "connect-node": "#ff7f0e",
};

const escapeXml = (text: string) =>
  text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

/**
 * A bar chart of each scenario's median rate per server, as SVG: one panel per scenario, each
 * scaled to its own largest bar (requests/s and messages/s do not share a scale).
 */
export function renderChart(results: readonly ScenarioResult[], subtitle: string): string {
  const width = 860;
  const labelWidth = 300;
  const barArea = width - labelWidth - 110;
  const barHeight = 18;
  const gap = 6;
  const parts: string[] = [];
  let y = 56;
  for (const result of results) {
    if (result.skipped !== undefined || result.variants.length === 0) continue;
    const max = Math.max(...result.variants.map((v) => v.median.rate));
    parts.push(
      `<text x="10" y="${y}" font-weight="bold">${escapeXml(result.scenario.title)} (${result.scenario.unit})</text>`,
    );
    y += 10;
    for (const v of result.variants) {
      const length =
        max > 0 && Number.isFinite(v.median.rate) ? (v.median.rate / max) * barArea : 0;
      const fill = v.variant.workers === undefined ? colors[v.variant.kind] : "#1a3d80";
      parts.push(
        `<text x="${labelWidth - 8}" y="${y + barHeight - 5}" text-anchor="end">${escapeXml(v.variant.label)}</text>`,
        `<rect x="${labelWidth}" y="${y}" width="${length.toFixed(1)}" height="${barHeight}" fill="${fill}"/>`,
        `<text x="${(labelWidth + length + 6).toFixed(1)}" y="${y + barHeight - 5}">${Math.round(v.median.rate).toLocaleString("en-US")}</text>`,
      );
      y += barHeight + gap;
    }
    y += 26;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="sans-serif" font-size="13">`,
    "<title>Median rate per server and scenario</title>",
    `<rect width="${width}" height="${y}" fill="white"/>`,
    `<text x="10" y="22" font-size="16" font-weight="bold">Median rate per server and scenario (higher is better)</text>`,
    `<text x="10" y="40" fill="#555">${escapeXml(subtitle)}</text>`,
    ...parts,
    "</svg>",
    "",
  ].join("\n");
}
