import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { root } from "./repo.ts";

const deploy = join(root, "deploy");

export type Manifest = Record<string, unknown> & { apiVersion: string; kind: string };

/** Each YAML file of deploy/kubernetes, parsed: one document per file. */
export function manifests(): Map<string, Manifest> {
  const dir = join(deploy, "kubernetes");
  const out = new Map<string, Manifest>();
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()) {
    const docs = parseAllDocuments(readFileSync(join(dir, file), "utf8"));
    assert.ok(Array.isArray(docs) && docs.length === 1, `${file}: expected one YAML document`);
    const [doc] = docs;
    assert.deepEqual(doc?.errors, [], `${file}: YAML errors`);
    out.set(file, doc?.toJS() as Manifest);
  }
  return out;
}

/** The manifest `file` as a kubernetes-models object of `kind`. */
export function model<T>(
  all: Map<string, Manifest>,
  file: string,
  kind: new (data: never) => T,
): T {
  const manifest = all.get(file);
  assert.ok(manifest, `deploy/kubernetes/${file} is missing`);
  return new kind(manifest as never);
}
