import {
  type DescEnum,
  type DescEnumValue,
  type DescField,
  type DescMessage,
  type DescMethod,
  type DescService,
  type FileRegistry,
  ScalarType,
} from "@bufbuild/protobuf";

/** What `keel describe` can describe: the kinds of symbol reflection knows. */
export type Described =
  | DescService
  | DescMethod
  | DescMessage
  | DescField
  | DescEnum
  | DescEnumValue;

/**
 * Finds `name` in `registry`: a service, message or enum by its full name, or a method, field or
 * enum value as `parent.name` (`user.v1.UserService.GetUser`, `user.v1.User.email`).
 */
export function findSymbol(registry: FileRegistry, name: string): Described | undefined {
  const direct = registry.get(name);
  if (direct !== undefined && direct.kind !== "extension") return direct;
  const dot = name.lastIndexOf(".");
  if (dot < 0) return undefined;
  const parent = registry.get(name.slice(0, dot));
  const member = name.slice(dot + 1);
  switch (parent?.kind) {
    case "service":
      return parent.methods.find((m) => m.name === member);
    case "message":
      return parent.fields.find((f) => f.name === member);
    case "enum":
      return parent.values.find((v) => v.name === member);
    default: {
      // An enum value is scoped like its enum's siblings: user.v1.USER_STATUS_ACTIVE.
      for (const type of registry) {
        if (type.kind !== "enum") continue;
        const value = type.values.find(
          (v) => `${type.typeName.slice(0, type.typeName.lastIndexOf(".") + 1)}${v.name}` === name,
        );
        if (value !== undefined) return value;
      }
      return undefined;
    }
  }
}

/** The symbol in protobuf's own syntax, headed by what it is, like grpcurl's describe. */
export function describeSymbol(symbol: Described): string {
  switch (symbol.kind) {
    case "service":
      return `${symbol.typeName} is a service:\n${serviceText(symbol)}`;
    case "rpc":
      return `${symbol.parent.typeName}.${symbol.name} is a method:\n${methodText(symbol)}`;
    case "message":
      return `${symbol.typeName} is a message:\n${messageText(symbol, "")}`;
    case "field":
      return `${symbol.parent.typeName}.${symbol.name} is a field:\n${fieldText(symbol)}`;
    case "enum":
      return `${symbol.typeName} is an enum:\n${enumText(symbol, "")}`;
    case "enum_value":
      return `${symbol.parent.typeName}.${symbol.name} is an enum value:\n${symbol.name} = ${symbol.number};`;
  }
}

function serviceText(service: DescService): string {
  const methods = service.methods.map((m) => `  ${methodText(m)}`);
  return `service ${service.name} {\n${methods.join("\n")}\n}`;
}

function methodText(method: DescMethod): string {
  const clientStream =
    method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming";
  const serverStream =
    method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming";
  const input = `${clientStream ? "stream " : ""}${method.input.typeName}`;
  const output = `${serverStream ? "stream " : ""}${method.output.typeName}`;
  return `rpc ${method.name}(${input}) returns (${output});`;
}

function messageText(message: DescMessage, indent: string): string {
  const lines: string[] = [`${indent}message ${message.name} {`];
  const inner = `${indent}  `;
  for (const member of message.members) {
    if (member.kind === "field") {
      lines.push(`${inner}${fieldText(member)}`);
      continue;
    }
    lines.push(`${inner}oneof ${member.name} {`);
    for (const field of member.fields) lines.push(`${inner}  ${fieldText(field)}`);
    lines.push(`${inner}}`);
  }
  for (const nested of message.nestedMessages) {
    // Map entries are written as map<K, V> on their field.
    if (nested.proto.options?.mapEntry !== true) lines.push(messageText(nested, inner));
  }
  for (const nested of message.nestedEnums) lines.push(enumText(nested, inner));
  lines.push(`${indent}}`);
  return lines.join("\n");
}

function enumText(type: DescEnum, indent: string): string {
  const values = type.values.map((v) => `${indent}  ${v.name} = ${v.number};`);
  return `${indent}enum ${type.name} {\n${values.join("\n")}\n${indent}}`;
}

function fieldText(field: DescField): string {
  const label = field.proto.proto3Optional ? "optional " : "";
  return `${label}${typeText(field)} ${field.name} = ${field.number};`;
}

function scalarName(scalar: ScalarType): string {
  return ScalarType[scalar].toLowerCase();
}

function typeText(field: DescField): string {
  switch (field.fieldKind) {
    case "scalar":
      return scalarName(field.scalar);
    case "enum":
      return field.enum.typeName;
    case "message":
      return field.message.typeName;
    case "list":
      return `repeated ${elementText(field.listKind, field)}`;
    case "map":
      return `map<${scalarName(field.mapKey)}, ${elementText(field.mapKind, field)}>`;
  }
}

/** The type of a list's items or a map's values. */
function elementText(
  kind: "scalar" | "enum" | "message",
  field: {
    scalar?: ScalarType | undefined;
    enum?: DescEnum | undefined;
    message?: DescMessage | undefined;
  },
): string {
  if (kind === "scalar") return scalarName(field.scalar as ScalarType);
  return kind === "enum"
    ? (field.enum as DescEnum).typeName
    : (field.message as DescMessage).typeName;
}
