import type { HttpBinding } from "./http-rule.ts";
import { compareTemplates, matchPathTemplate } from "./path-template.ts";
import { RequestPath } from "./request-path.ts";

/** What a request finds: its binding and path variables, or the methods its path allows. */
export type RouteMatch =
  | { binding: HttpBinding; variables: ReadonlyMap<string, string>; allowed?: undefined }
  | { allowed: string[] };

/** The HTTP bindings in the order they are tried, most specific first. */
export interface RouteTable {
  readonly bindings: readonly HttpBinding[];
  /** The binding for a method and a raw path (still percent-encoded, without the query). */
  find(httpMethod: string, path: string): RouteMatch | undefined;
  /** Whether a path lies under a route's first literal segment (`/api/…`), or matches a route. */
  covers(path: string): boolean;
}

/**
 * A table of bindings served under `prefix` (such as "/rest", or ""). The first binding whose
 * template matches the path and whose method is the request's wins; templates are tried from the
 * most to the least specific (see `compareTemplates`), so `/users/me` beats `/users/{id}`.
 */
export function createRouteTable(bindings: readonly HttpBinding[], prefix: string): RouteTable {
  const sorted = [...bindings].sort((a, b) => compareTemplates(a.template, b.template));
  const roots = new Set<string>();
  for (const { template } of sorted) {
    const first = template.segments[0];
    if (first?.kind === "literal" && template.variables[0]?.start !== 0) {
      roots.add(`${prefix}/${first.value}`);
    }
  }
  const find = (httpMethod: string, path: string): RouteMatch | undefined => {
    if (path !== prefix && !path.startsWith(`${prefix}/`)) return undefined;
    const rest = new RequestPath(path.slice(prefix.length));
    let allowed: Set<string> | undefined;
    for (const binding of sorted) {
      const variables = matchPathTemplate(binding.template, rest);
      if (variables === undefined) continue;
      if (binding.httpMethod === httpMethod) return { binding, variables };
      allowed ??= new Set();
      allowed.add(binding.httpMethod);
    }
    return allowed === undefined ? undefined : { allowed: [...allowed] };
  };
  const covers = (path: string): boolean => {
    for (const root of roots) if (path === root || path.startsWith(`${root}/`)) return true;
    return find("GET", path) !== undefined;
  };
  return { bindings: sorted, find, covers };
}
