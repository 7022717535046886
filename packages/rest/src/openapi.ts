import {
  create,
  createFileRegistry,
  type DescFile,
  type DescMethod,
  type DescService,
  type FileRegistry,
  getOption,
  hasOption,
} from "@bufbuild/protobuf";
import { type FileDescriptorSet, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { http } from "@keel/gen/google/api/annotations_pb";
import { method as methodPolicy } from "@keel/gen/policy/v1/policy_pb";
import { commentOf } from "./comments.ts";
import { codeName } from "./error-mapping.ts";
import { collectHttpBindings } from "./http-rule.ts";
import { type OpenApiOperation, operationOf } from "./openapi-operation.ts";
import { createSchemaCollector, type OpenApiSchema } from "./openapi-schemas.ts";
import { openApiPath } from "./path-template.ts";

export type { OpenApiOperation, OpenApiParameter } from "./openapi-operation.ts";
export type { OpenApiSchema } from "./openapi-schemas.ts";

export interface OpenApiOptions {
  /**
   * The protos, as `buf build --as-file-descriptor-set` writes them (imports included). Their
   * comments, when the set carries source code info, become descriptions.
   */
  files: FileDescriptorSet;
  /**
   * The services to describe, by type name, in this order. Default: every service with
   * `google.api.http` rules, in the order of the set.
   */
  services?: readonly string[];
  /** The document's `info`. Default: the services' names, version "1.0.0". */
  info?: { title: string; version: string; description?: string };
  /** Prefixed to every path, such as "/rest". Default "". */
  pathPrefix?: string;
  /**
   * Whether a method answers without credentials (no bearer token in its `security`). Default: its
   * `(policy.v1.method).access.public`.
   */
  isPublic?: (method: DescMethod) => boolean;
}

/** An OpenAPI 3.0 document. */
export interface OpenApiDocument {
  openapi: "3.0.3";
  info: { title: string; version: string; description?: string };
  tags: { name: string; description?: string }[];
  security: Record<string, string[]>[];
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: {
    schemas: Record<string, OpenApiSchema>;
    securitySchemes: Record<string, Record<string, string>>;
  };
}

const openApiMethods = new Set([
  "get",
  "put",
  "post",
  "delete",
  "options",
  "head",
  "patch",
  "trace",
]);

/**
 * Generates the OpenAPI 3.0 document of the services' `google.api.http` rules: a path per rule
 * (additional bindings included) with its path and query parameters, request body and responses
 * (200, and the error body otherwise; `application/x-ndjson` for server streams), schemas of the
 * messages in proto3 JSON terms, comments as descriptions, and a bearer JWT security scheme.
 * A pure function of the descriptors.
 */
export function createOpenApiDocument(options: OpenApiOptions): OpenApiDocument {
  const registry = createFileRegistry(options.files);
  const services: DescService[] = [];
  for (const file of registry.files) {
    for (const service of file.services) {
      if (service.methods.some((m) => hasOption(m, http))) services.push(service);
    }
  }
  if (options.services !== undefined) {
    const wanted = options.services;
    services.splice(0, services.length, ...wanted.map((name) => serviceOf(registry, name)));
  }
  const isPublic = options.isPublic ?? publicByPolicy;
  const prefix = (options.pathPrefix ?? "").replace(/\/+$/, "");
  const schemas = createSchemaCollector();
  const paths: OpenApiDocument["paths"] = {};
  const operationIds = new Set<string>();
  for (const binding of collectHttpBindings(services)) {
    const path = prefix + openApiPath(binding.template);
    const verb = binding.httpMethod.toLowerCase();
    // OpenAPI 3.0 knows no other methods (`custom: {kind: "SEARCH"}`): those go undocumented.
    if (!openApiMethods.has(verb)) continue;
    const item = paths[path] ?? {};
    if (item[verb] !== undefined) throw new Error(`${binding.httpMethod} ${path} is bound twice`);
    let operationId = `${binding.method.parent.name}_${binding.method.name}`;
    for (let n = 1; operationIds.has(operationId); n++) {
      operationId = `${binding.method.parent.name}_${binding.method.name}_${n}`;
    }
    operationIds.add(operationId);
    item[verb] = operationOf(binding, operationId, isPublic(binding.method), schemas);
    paths[path] = item;
  }
  return {
    openapi: "3.0.3",
    info: options.info ?? {
      title: services.map((s) => s.typeName).join(", "),
      version: "1.0.0",
    },
    tags: services.map((s) => {
      const description = commentOf(s);
      return description === undefined ? { name: s.typeName } : { name: s.typeName, description };
    }),
    security: [{ bearerAuth: [] }],
    paths,
    components: {
      schemas: { ...sorted(schemas.components), Error: errorSchema() },
      securitySchemes: {
        bearerAuth: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description: "An access token: `authorization: Bearer <token>`.",
        },
      },
    },
  };
}

function errorSchema(): OpenApiSchema {
  const names = Array.from({ length: 16 }, (_, i) => codeName(i + 1));
  return {
    type: "object",
    description: "An error, as Google APIs report them.",
    required: ["error"],
    properties: {
      error: {
        type: "object",
        required: ["code", "status", "message"],
        properties: {
          code: { type: "integer", format: "int32", description: "The HTTP status." },
          status: { type: "string", enum: names, description: "The gRPC code." },
          message: { type: "string", description: "What went wrong." },
          details: {
            type: "array",
            description: "Error details, each with its type in `@type`.",
            items: errorDetailSchema,
          },
        },
      },
    },
  };
}

const errorDetailSchema: OpenApiSchema = {
  type: "object",
  required: ["@type"],
  properties: { "@type": { type: "string" } },
  additionalProperties: true,
};

/**
 * The FileDescriptorSet of the services' files and their imports, from the descriptors embedded
 * in generated code (which carry no comments): for a document generated at run time.
 */
export function descriptorSetOf(services: readonly DescService[]): FileDescriptorSet {
  const files = new Map<string, DescFile>();
  const add = (file: DescFile): void => {
    if (files.has(file.name)) return;
    // Imports first: a registry is built from a set in order.
    for (const dependency of file.dependencies) add(dependency);
    files.set(file.name, file);
  };
  for (const service of services) add(service.file);
  return create(FileDescriptorSetSchema, { file: [...files.values()].map((f) => f.proto) });
}

function serviceOf(registry: FileRegistry, typeName: string): DescService {
  const service = registry.getService(typeName);
  if (service === undefined) throw new Error(`no service ${typeName} in the descriptor set`);
  return service;
}

function publicByPolicy(method: DescMethod): boolean {
  return hasOption(method, methodPolicy) && getOption(method, methodPolicy).access?.public === true;
}

function sorted<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(
    Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
}
