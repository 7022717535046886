import { readFileSync } from "node:fs";
import type { OpenApiDocument } from "./openapi.ts";

/** Where `pnpm --filter @keel/rest openapi` writes the document: the package's root. */
export const openApiFile = new URL("../openapi.json", import.meta.url);

/**
 * The OpenAPI document written at build time from the protos, with their comments as descriptions
 * (`packages/rest/openapi.json`, shipped with the package). Throws when it was never written.
 */
export function readOpenApiDocument(): OpenApiDocument {
  let text: string;
  try {
    text = readFileSync(openApiFile, "utf8");
  } catch (err) {
    throw new Error(
      `${openApiFile.pathname} is missing; write it with \`pnpm --filter @keel/rest openapi\``,
      { cause: err },
    );
  }
  return JSON.parse(text) as OpenApiDocument;
}
