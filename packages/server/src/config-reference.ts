import { z } from "zod";
import { environment, otherVariables, settingsSchema } from "./config.ts";
import { settingDescriptions } from "./config-descriptions.ts";
import { appliesLive } from "./config-reload.ts";

/** One row of the configuration reference. */
export interface ReferenceRow {
  /** The environment variable, when the setting has one. */
  variable: string | undefined;
  /** The configuration file's key, dotted; undefined for a variable that is not a setting. */
  key: string | undefined;
  /** The default, as Markdown. */
  default: string;
  /** The values allowed, from the schema. */
  values: string;
  /** Whether a change in the watched configuration file applies without a restart. */
  live: boolean;
  meaning: string;
}

/** The part of a JSON Schema node the reference reads. */
interface Node {
  type?: string;
  properties?: Record<string, Node>;
  default?: unknown;
  enum?: unknown[];
  anyOf?: Node[];
  minimum?: number;
  exclusiveMinimum?: number;
  maximum?: number;
  minLength?: number;
  format?: string;
}

const schemaNode = z.toJSONSchema(settingsSchema, { io: "output", unrepresentable: "any" }) as Node;

function nodeAt(key: string): Node {
  let node: Node | undefined = schemaNode;
  for (const name of key.split(".")) node = node?.properties?.[name];
  if (node === undefined) throw new Error(`the configuration schema has no key ${key}`);
  return node;
}

const code = (value: unknown) => `\`${typeof value === "string" ? value : JSON.stringify(value)}\``;

/** The values a schema node allows, in words. */
function valuesOf(node: Node): string {
  if (node.enum !== undefined) return node.enum.map(code).join(", ");
  if (node.anyOf?.some((n) => n.type === "boolean") || node.type === "boolean") {
    return "`true` or `false`";
  }
  if (node.type === "integer" || node.type === "number") {
    const kind = node.type === "integer" ? "integer" : "number";
    const max =
      node.maximum !== undefined && node.maximum < Number.MAX_SAFE_INTEGER
        ? node.maximum
        : undefined;
    if (node.minimum !== undefined && max !== undefined) return `${kind} ${node.minimum}–${max}`;
    if (node.minimum !== undefined) return `${kind} ≥ ${node.minimum}`;
    if (node.exclusiveMinimum !== undefined) return `${kind} > ${node.exclusiveMinimum}`;
    return kind;
  }
  if (node.type === "array") return "comma-separated list";
  if (node.type === "object") return "mapping";
  if (node.format === "uri") return "URL";
  if (node.minLength !== undefined && node.minLength > 1)
    return `text, ≥ ${node.minLength} characters`;
  return "text";
}

function defaultOf(node: Node): string {
  const value = node.default;
  const empty =
    value === undefined ||
    (Array.isArray(value) && value.length === 0) ||
    (typeof value === "object" && value !== null && Object.keys(value).length === 0);
  if (empty) return "—";
  return code(value);
}

function describe(name: string): string {
  const description = settingDescriptions[name];
  if (description === undefined) {
    throw new Error(
      `${name} has no description: add its meaning to settingDescriptions (packages/server/src/config-descriptions.ts)`,
    );
  }
  return description.meaning;
}

function settingRow(variable: string | undefined, key: string): ReferenceRow {
  const node = nodeAt(key);
  const name = variable ?? key;
  return {
    variable,
    key,
    default: settingDescriptions[name]?.default ?? defaultOf(node),
    values: valuesOf(node),
    live: appliesLive(key),
    meaning: describe(name),
  };
}

/** Keys of the configuration file that no variable sets. */
const fileOnlyKeys = ["auth.oidc.roleMapping", "ipAccess.methods", "rateLimits.methods"];

/**
 * Every setting and every `KEEL_*` variable keel reads, in the order of the schema's variables:
 * names and keys from `environment`, defaults and allowed values from the schema, live or restart
 * from the reload rules, meanings from `settingDescriptions`. Throws naming a setting without a
 * description.
 */
export function configurationRows(): ReferenceRow[] {
  const rows: ReferenceRow[] = [];
  const other = (variable: string): ReferenceRow => ({
    variable,
    key: undefined,
    default: settingDescriptions[variable]?.default ?? "—",
    values: variable === "KEEL_CONFIG" ? "file" : "PEM file",
    live: false,
    meaning: describe(variable),
  });
  rows.push(other("KEEL_CONFIG"));
  const entries = Object.entries(environment);
  const parentOf = (key: string) => key.slice(0, key.lastIndexOf("."));
  for (const [i, [variable, path]] of entries.entries()) {
    const key = path.join(".");
    rows.push(settingRow(variable, key));
    const next = entries[i + 1]?.[1].join(".");
    // A file-only key follows the last variable of its group.
    for (const fileKey of fileOnlyKeys) {
      if (
        parentOf(fileKey) === parentOf(key) &&
        (next === undefined || parentOf(next) !== parentOf(key))
      ) {
        rows.push(settingRow(undefined, fileKey));
      }
    }
  }
  for (const variable of otherVariables) if (variable !== "KEEL_CONFIG") rows.push(other(variable));
  return rows;
}

/** The configuration reference as a Markdown table, formatted as biome formats it. */
export function configurationTable(): string {
  const header = ["Variable", "Key", "Default", "Values", "Live", "Meaning"];
  const cells = configurationRows().map((row) => [
    row.variable === undefined ? "" : `\`${row.variable}\``,
    row.key === undefined ? "" : `\`${row.key}\``,
    row.default,
    row.values,
    row.live ? "yes" : "",
    row.meaning.replaceAll("|", "\\|"),
  ]);
  // Columns padded to their widest cell, as the formatter (biome) writes Markdown tables.
  const widths = header.map((name, i) =>
    Math.max(3, name.length, ...cells.map((row) => (row[i] as string).length)),
  );
  const line = (values: string[]) =>
    `| ${values.map((value, i) => value.padEnd(widths[i] as number)).join(" | ")} |`;
  const rule = `| ${widths.map((width) => "-".repeat(width)).join(" | ")} |`;
  return [line(header), rule, ...cells.map(line)].join("\n");
}

/** The command that writes the table into docs/configuration.md. */
export const generateCommand = "./dev pnpm --filter @keel/server generate:docs";

const begin = `<!-- generated from the configuration schema by ${generateCommand}; do not edit by hand -->`;
const end = "<!-- end of generated table -->";

/**
 * docs/configuration.md with its table regenerated: what lies between the markers is replaced,
 * the rest kept. Throws when the markers are missing.
 */
export function withConfigurationTable(document: string): string {
  const from = document.indexOf(begin);
  const to = document.indexOf(end);
  if (from < 0 || to < from) {
    throw new Error(
      `the document has no generated table: put the lines\n${begin}\n${end}\nwhere it goes`,
    );
  }
  return `${document.slice(0, from + begin.length)}\n\n${configurationTable()}\n\n${document.slice(to)}`;
}
