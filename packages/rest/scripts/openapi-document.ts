import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { createOpenApiDocument, type OpenApiDocument } from "../src/openapi.ts";

const root = new URL("../../../", import.meta.url);

/**
 * keel's OpenAPI document, from the protos as they are now: `buf build` compiles the workspace
 * (with source code info, which the descriptors embedded in gen/ lack) into a FileDescriptorSet,
 * and createOpenApiDocument turns it into the document.
 */
export function generateOpenApiDocument(): OpenApiDocument {
  const localBuf = fileURLToPath(new URL("node_modules/.bin/buf", root));
  const set = execFileSync(
    existsSync(localBuf) ? localBuf : "buf",
    ["build", "--as-file-descriptor-set", "-o", "-#format=binpb"],
    { cwd: fileURLToPath(root), maxBuffer: 256 * 1024 * 1024 },
  );
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  return createOpenApiDocument({
    files: fromBinary(FileDescriptorSetSchema, set),
    services: ["user.v1.UserService", "order.v1.OrderService"],
    info: {
      title: "keel",
      version: String(pkg.version),
      description:
        "keel's services over HTTP/JSON, transcoded by their google.api.http rules. Server " +
        "streams are newline-delimited JSON (application/x-ndjson).",
    },
  });
}

/** The document as written to openapi.json. */
export function formatOpenApiDocument(document: OpenApiDocument): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}
