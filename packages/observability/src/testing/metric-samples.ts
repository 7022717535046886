/** Reading Prometheus and OpenMetrics exposition text in the metrics tests. */

export const openMetrics = "application/openmetrics-text; version=1.0.0; charset=utf-8";
export const prometheus = "text/plain; version=0.0.4; charset=utf-8";

type GrpcType = "unary" | "server_stream" | "client_stream" | "bidi_stream";

/** UserService's methods and their `grpc_type`. */
export const methods: [string, GrpcType][] = [
  ["GetUser", "unary"],
  ["CreateUser", "unary"],
  ["ListUsers", "unary"],
  ["StreamUserActivities", "server_stream"],
  ["BatchUpdateUsers", "client_stream"],
  ["SyncUserStatus", "bidi_stream"],
  ["Login", "unary"],
  ["RefreshToken", "unary"],
  ["CreateApiKey", "unary"],
  ["ListApiKeys", "unary"],
  ["RevokeApiKey", "unary"],
];
const typeOf = (method: string) => methods.find(([m]) => m === method)?.[1] ?? "unary";

/** A method's labels as printed: sorted by name, as Go's client prints them. */
export function labels(method: string, code?: string): string {
  const common = `grpc_method="${method}",grpc_service="user.v1.UserService",grpc_type="${typeOf(method)}"`;
  return code === undefined ? common : `grpc_code="${code}",${common}`;
}

/** One value per method of UserService: `values[method]`, else 0. */
export function perMethod(values: Record<string, number>, only?: string[]): Record<string, number> {
  return Object.fromEntries(
    methods
      .filter(([m]) => only === undefined || only.includes(m))
      .map(([m]) => [labels(m), values[m] ?? 0]),
  );
}

/** The samples named exactly `name` in exposition text: printed labels → value. */
export function samples(text: string, name: string): Record<string, number> {
  const found: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.indexOf("} ");
    found[line.slice(name.length + 1, close)] = Number(line.slice(close + 2).split(" ")[0]);
  }
  return found;
}

/** The samples of `name` that are not zero. */
export function nonZero(text: string, name: string): Record<string, number> {
  return Object.fromEntries(Object.entries(samples(text, name)).filter(([, v]) => v !== 0));
}
