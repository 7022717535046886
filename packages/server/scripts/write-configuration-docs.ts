// Writes the settings table of docs/configuration.md from the configuration schema. Run by
// `./dev pnpm --filter @keel/server generate:docs`; config-reference.test.ts fails when the
// committed file differs from what this writes.
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { withConfigurationTable } from "../src/config-reference.ts";

const path = fileURLToPath(new URL("../../../docs/configuration.md", import.meta.url));
const before = readFileSync(path, "utf8");
const after = withConfigurationTable(before);
writeFileSync(path, after);
process.stdout.write(`${path}: ${before === after ? "unchanged" : "table rewritten"}\n`);
