import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { OrderService } from "@keel/gen/order/v1/order_pb";
import { UserService } from "@keel/gen/user/v1/user_pb";

/** The services the console offers, in the order it lists them. */
export const services: readonly DescService[] = [UserService, OrderService];

/** How each kind of method is named in the list. */
export const kindLabels: Record<DescMethod["methodKind"], string> = {
  unary: "unary",
  server_streaming: "server streaming",
  client_streaming: "client streaming",
  bidi_streaming: "bidi streaming",
};

/**
 * Whether a browser can call the method. `fetch` cannot stream a request body to the server in
 * every browser, so Connect and gRPC-Web in a browser only offer unary and server-streaming calls.
 */
export function isCallableFromBrowser(method: DescMethod): boolean {
  return method.methodKind === "unary" || method.methodKind === "server_streaming";
}

/** The method's signature as it reads in the proto: `GetUser(user.v1.GetUserRequest) returns (…)`. */
export function signature(method: DescMethod): string {
  const client = method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming";
  const server = method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming";
  const input = `${client ? "stream " : ""}${method.input.typeName}`;
  const output = `${server ? "stream " : ""}${method.output.typeName}`;
  return `${method.name}(${input}) returns (${output})`;
}

/** The method's path, which is also its id in the page: `/user.v1.UserService/GetUser`. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** Finds a method by its path. */
export function findMethod(path: string): DescMethod | undefined {
  for (const service of services) {
    for (const method of service.methods) if (methodPath(method) === path) return method;
  }
  return undefined;
}
