import { type DescField, type DescMethod, getOption } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { method as methodPolicy } from "@keel/gen/policy/v1/policy_pb";
import { perMethod } from "./per-method.ts";

/** A method's access rule, compiled once from its `(policy.v1.method)` option. */
export interface AccessPolicy {
  /** "user.v1.UserService/GetUser" */
  readonly procedure: string;
  /** False when the method declares no rule: it is then denied to everyone. */
  readonly declared: boolean;
  readonly public: boolean;
  readonly authenticated: boolean;
  readonly roles: ReadonlySet<string>;
  readonly owner:
    | {
        /** The request field holding the owning user id, by local (TypeScript) name. */
        userIdField: string | undefined;
        /** The request field holding an order id whose user owns it. */
        orderIdField: string | undefined;
        /** Only messages where this field is set need ownership. */
        onlyWhenSet: string | undefined;
      }
    | undefined;
}

/** Rules for services that carry no `(policy.v1.method)` option, by service type name or procedure. */
export type ExtraPolicies = Readonly<
  Record<
    string,
    Partial<Pick<AccessPolicy, "public" | "authenticated">> & { roles?: readonly string[] }
  >
>;

/**
 * Resolves methods' access policies from the generated descriptors (each compiled once), with
 * `extra` rules for services without the option, such as health checking.
 */
export function createPolicyResolver(
  extra: ExtraPolicies = {},
): (method: DescMethod) => AccessPolicy {
  return perMethod((method) => compile(method, extra));
}

function compile(method: DescMethod, extra: ExtraPolicies): AccessPolicy {
  const procedure = `${method.parent.typeName}/${method.name}`;
  const override = extra[procedure] ?? extra[method.parent.typeName];
  if (override !== undefined) {
    return {
      procedure,
      declared: true,
      public: override.public ?? false,
      authenticated: override.authenticated ?? false,
      roles: new Set(override.roles ?? []),
      owner: undefined,
    };
  }
  const access = getOption(method, methodPolicy).access;
  if (access === undefined) {
    return {
      procedure,
      declared: false,
      public: false,
      authenticated: false,
      roles: new Set(),
      owner: undefined,
    };
  }
  const local = (name: string) => (name === "" ? undefined : field(method, name).localName);
  const owner = access.owner;
  return {
    procedure,
    declared: true,
    public: access.public,
    authenticated: access.authenticated,
    roles: new Set(access.roles),
    owner:
      owner === undefined
        ? undefined
        : {
            userIdField: local(owner.userIdField),
            orderIdField: local(owner.orderIdField),
            onlyWhenSet: local(owner.onlyWhenSet),
          },
  };
}

function field(method: DescMethod, name: string): DescField {
  const found = method.input.fields.find((f) => f.name === name);
  if (found === undefined) {
    throw new ConnectError(
      `${method.parent.typeName}/${method.name}: policy names unknown field ${name} of ${method.input.typeName}`,
      Code.Internal,
    );
  }
  return found;
}
