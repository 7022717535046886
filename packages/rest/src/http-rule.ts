import { type DescMethod, type DescService, getOption, hasOption } from "@bufbuild/protobuf";
import { http } from "@keel/gen/google/api/annotations_pb";
import type { HttpRule } from "@keel/gen/google/api/http_pb";
import { isSingularValue, resolveFieldPath } from "./field-path.ts";
import { type PathTemplate, parsePathTemplate } from "./path-template.ts";

/** One HTTP route of an RPC: a `google.api.http` rule or one of its `additional_bindings`. */
export interface HttpBinding {
  readonly method: DescMethod;
  /** "user.v1.UserService/GetUser" */
  readonly procedure: string;
  /** The HTTP method in capitals: "GET", "POST", … or a custom rule's `kind`. */
  readonly httpMethod: string;
  readonly template: PathTemplate;
  /** "" (no body), "*" (the whole request) or the top-level request field the body holds. */
  readonly body: string;
  /** "" (the whole response) or the top-level response field that makes the response body. */
  readonly responseBody: string;
}

/**
 * Collects the HTTP bindings of the services' methods from their `google.api.http` options,
 * `additional_bindings` included. Methods without the option are not exposed. Throws an Error
 * naming the method when a rule cannot be served: a client-streaming method, a malformed path, a
 * variable naming no singular scalar field, a `body` or `response_body` naming no top-level field.
 */
export function collectHttpBindings(services: readonly DescService[]): HttpBinding[] {
  const bindings: HttpBinding[] = [];
  for (const service of services) {
    for (const method of service.methods) {
      if (!hasOption(method, http)) continue;
      const rule = getOption(method, http);
      // Bindings do not nest: additional_bindings of an additional binding are ignored.
      for (const r of [rule, ...rule.additionalBindings]) {
        bindings.push(toBinding(method, r));
      }
    }
  }
  return bindings;
}

/** The HTTP method and path template of a rule; undefined when it sets no pattern. */
export function rulePattern(rule: HttpRule): { httpMethod: string; path: string } | undefined {
  switch (rule.pattern.case) {
    case "get":
    case "put":
    case "post":
    case "delete":
    case "patch":
      return { httpMethod: rule.pattern.case.toUpperCase(), path: rule.pattern.value };
    case "custom":
      return { httpMethod: rule.pattern.value.kind.toUpperCase(), path: rule.pattern.value.path };
    default:
      return undefined;
  }
}

function toBinding(method: DescMethod, rule: HttpRule): HttpBinding {
  const procedure = `${method.parent.typeName}/${method.name}`;
  const fail = (problem: string): never => {
    throw new Error(`google.api.http of ${procedure}: ${problem}`);
  };
  if (method.methodKind !== "unary" && method.methodKind !== "server_streaming") {
    fail(`a ${method.methodKind.replace("_", "-")} method cannot be served over HTTP/JSON`);
  }
  const pattern = rulePattern(rule) ?? fail("no HTTP method and path");
  let template: PathTemplate;
  try {
    template = parsePathTemplate(pattern.path);
  } catch (err) {
    return fail(err instanceof Error ? err.message : String(err));
  }
  for (const variable of template.variables) {
    const fields = resolveFieldPath(method.input, variable.fieldPath, false);
    const leaf = fields?.at(-1);
    if (leaf === undefined || !isSingularValue(leaf)) {
      fail(`{${variable.fieldPath.join(".")}} names no singular scalar field of the request`);
    }
  }
  const { body, responseBody } = rule;
  if (body !== "" && body !== "*" && !method.input.fields.some((f) => f.name === body)) {
    fail(`body "${body}" names no top-level field of ${method.input.typeName}`);
  }
  if (responseBody !== "" && !method.output.fields.some((f) => f.name === responseBody)) {
    fail(`response_body "${responseBody}" names no top-level field of ${method.output.typeName}`);
  }
  return { method, procedure, httpMethod: pattern.httpMethod, template, body, responseBody };
}
