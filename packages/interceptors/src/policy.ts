import { type DescField, type DescMessage, type DescMethod, getOption } from "@bufbuild/protobuf";
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
  /** Request fields only some roles may set (`restricted_fields`); empty for most methods. */
  readonly restrictedFields: readonly RestrictedField[];
}

/** A request field only some roles may set, compiled from a `policy.v1.FieldRule`. */
export interface RestrictedField {
  /** The rule's path as declared, for messages: "user.status". */
  readonly path: string;
  readonly roles: ReadonlySet<string>;
  /** Whether `message` sets the field: see `FieldRule.update_mask`. */
  readonly isSet: (message: Record<string, unknown>) => boolean;
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
      restrictedFields: [],
    };
  }
  const declared = getOption(method, methodPolicy);
  const access = declared.access;
  const restrictedFields = declared.restrictedFields.map((rule) =>
    compileFieldRule(method, rule.path, rule.roles, rule.updateMask),
  );
  if (access === undefined) {
    return {
      procedure,
      declared: false,
      public: false,
      authenticated: false,
      roles: new Set(),
      owner: undefined,
      restrictedFields,
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
    restrictedFields,
  };
}

function compileFieldRule(
  method: DescMethod,
  path: string,
  roles: readonly string[],
  updateMask: string,
): RestrictedField {
  // Walk the path through message fields, keeping each step's local (TypeScript) name.
  const steps: string[] = [];
  let message: DescMessage = method.input;
  const names = path.split(".");
  for (const [i, name] of names.entries()) {
    const f = field(method, name, message);
    steps.push(f.localName);
    if (i < names.length - 1) {
      if (f.fieldKind !== "message") {
        throw policyError(method, `restricted field ${path}: ${name} is not a message field`);
      }
      message = f.message;
    }
  }
  const fieldValue = (m: Record<string, unknown>): unknown => {
    let value: unknown = m;
    for (const step of steps) {
      if (value === undefined || value === null) return undefined;
      value = (value as Record<string, unknown>)[step];
    }
    return value;
  };
  let isSet = (m: Record<string, unknown>) => !isZeroValue(fieldValue(m));
  if (updateMask !== "") {
    const mask = field(method, updateMask, method.input);
    if (mask.fieldKind !== "message" || mask.message.typeName !== "google.protobuf.FieldMask") {
      throw policyError(method, `update_mask ${updateMask} is not a google.protobuf.FieldMask`);
    }
    const maskPath = names.slice(1).join(".");
    const byValue = isSet;
    isSet = (m) => {
      const paths = (m[mask.localName] as { paths: string[] } | undefined)?.paths ?? [];
      return paths.length > 0 ? paths.includes(maskPath) : byValue(m);
    };
  }
  return { path, roles: new Set(roles), isSet };
}

/** The zero value of a proto3 field: what "not set" means for a field without presence. */
export function isZeroValue(value: unknown): boolean {
  if (value === undefined || value === null) return true;
  switch (typeof value) {
    case "number":
      return value === 0;
    case "bigint":
      return value === 0n;
    case "string":
      return value === "";
    case "boolean":
      return !value;
    case "object":
      if (Array.isArray(value) || value instanceof Uint8Array) return value.length === 0;
      // A message is set once present; a map (a plain record) when it has an entry.
      return "$typeName" in value ? false : Object.keys(value).length === 0;
    default:
      return false;
  }
}

function field(method: DescMethod, name: string, message: DescMessage = method.input): DescField {
  const found = message.fields.find((f) => f.name === name);
  if (found === undefined) {
    throw policyError(method, `policy names unknown field ${name} of ${message.typeName}`);
  }
  return found;
}

function policyError(method: DescMethod, message: string): ConnectError {
  return new ConnectError(`${method.parent.typeName}/${method.name}: ${message}`, Code.Internal);
}
