import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { deployFiles, renderDeployFiles } from "./deploy-files.ts";

// Writes the Grafana dashboard and the Prometheus alert rules into deploy/ (run by the
// package's generate:deploy script; a test fails when the committed files differ).
const root = fileURLToPath(new URL("../../../../", import.meta.url));
const text = renderDeployFiles();
for (const key of Object.keys(deployFiles) as (keyof typeof deployFiles)[]) {
  const path = join(root, deployFiles[key]);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text[key]);
  process.stdout.write(`wrote ${deployFiles[key]}\n`);
}
