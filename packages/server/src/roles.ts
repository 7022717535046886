import { OrderService } from "@keel/gen/order/v1/order_pb";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { createPolicyResolver } from "@keel/interceptors";

/**
 * Every role the services' access policies name (their `policy.v1` options: who may call a
 * method, who may set a restricted field), sorted: the roles worth giving a user. A role named
 * nowhere grants nothing.
 */
export function knownRoles(): string[] {
  const policyOf = createPolicyResolver();
  const roles = new Set<string>();
  for (const service of [UserService, OrderService]) {
    for (const method of service.methods) {
      const policy = policyOf(method);
      for (const role of policy.roles) roles.add(role);
      for (const field of policy.restrictedFields) for (const role of field.roles) roles.add(role);
    }
  }
  return [...roles].sort();
}
