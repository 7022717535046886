// Writes packages/rest/openapi.json, the OpenAPI document of the protos' google.api.http rules with
// their comments as descriptions: `pnpm --filter @keel/rest openapi`.
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { openApiFile } from "../src/openapi-file.ts";
import { formatOpenApiDocument, generateOpenApiDocument } from "./openapi-document.ts";

const document = generateOpenApiDocument();
writeFileSync(openApiFile, formatOpenApiDocument(document));
console.log(`wrote ${fileURLToPath(openApiFile)}: ${Object.keys(document.paths).length} paths`);
