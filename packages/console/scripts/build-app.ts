// Bundles the browser app (src/app) into dist: console.js (with its source map), index.html and
// console.css, next to what tsc emits for the Node side. Run by `pnpm build` after tsc.
import { copyFile, mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const app = fileURLToPath(new URL("../src/app/", import.meta.url));
const dist = fileURLToPath(new URL("../dist/", import.meta.url));

await mkdir(dist, { recursive: true });
await build({
  entryPoints: [`${app}main.ts`],
  outfile: `${dist}console.js`,
  bundle: true,
  format: "esm",
  platform: "browser",
  // Browsers of the last few years: BigInt, top-level await, private fields.
  target: ["es2022"],
  minify: true,
  sourcemap: "linked",
  // Workspace packages (@keel/gen) from their TypeScript sources, as everywhere in the workspace.
  conditions: ["source"],
  logLevel: "warning",
});
await Promise.all(
  ["index.html", "console.css"].map((name) => copyFile(`${app}${name}`, `${dist}${name}`)),
);
