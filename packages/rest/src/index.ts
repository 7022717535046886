export type { RestErrorBody } from "./error-mapping.ts";
export { codeName, httpStatusFromCode, restErrorBody } from "./error-mapping.ts";
export type {
  OpenApiDocument,
  OpenApiOperation,
  OpenApiOptions,
  OpenApiParameter,
  OpenApiSchema,
} from "./openapi.ts";
export { createOpenApiDocument, descriptorSetOf } from "./openapi.ts";
export { readOpenApiDocument } from "./openapi-file.ts";
export type {
  NodeRequest,
  NodeResponse,
  RestHandler,
  RestHandlerOptions,
  RestRequest,
  RestRoute,
} from "./rest-handler.ts";
export { createRestHandler } from "./rest-handler.ts";
