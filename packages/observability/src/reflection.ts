import { create, type DescFile, type DescService, toBinary } from "@bufbuild/protobuf";
import {
  type DescriptorProto,
  type EnumDescriptorProto,
  type FieldDescriptorProto,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter, type ServiceImpl } from "@connectrpc/connect";
import * as v1 from "@keel/gen/grpc/reflection/v1/reflection_pb";
import * as v1alpha from "@keel/gen/grpc/reflection/v1alpha/reflection_pb";

/** Options for `createReflectionServices` and `registerReflection`. */
export interface ReflectionOptions {
  /**
   * The services served next to reflection (include `Health` if it is served). `list_services`
   * reports their names and both reflection services'; every file they are declared in, and every
   * file those import, transitively, can be asked for by name, symbol or extension. Required.
   */
  services: DescService[];
}

/** Both versions of gRPC server reflection, answering from one index. */
export interface ReflectionServices {
  /** `grpc.reflection.v1.ServerReflection`, which current clients try first. */
  v1: ServiceImpl<typeof v1.ServerReflection>;
  /** `grpc.reflection.v1alpha.ServerReflection`, which older clients still use. */
  v1alpha: ServiceImpl<typeof v1alpha.ServerReflection>;
}

/** The index built once at start-up: files by name, and the file of every symbol. */
interface Index {
  services: string[];
  files: Map<string, DescFile>;
  /** Serialized FileDescriptorProtos, encoded on first request. */
  encoded: Map<DescFile, Uint8Array>;
  symbols: Map<string, DescFile>;
  messages: Set<string>;
  /** Extendee's full name → field number → the file declaring that extension. */
  extensions: Map<string, Map<number, DescFile>>;
}

/** The part of a response that differs by request, the same in both versions. */
type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | {
      case: "allExtensionNumbersResponse";
      value: { baseTypeName: string; extensionNumber: number[] };
    }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

type Request = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;

/**
 * Creates the gRPC server reflection services, v1 and v1alpha, for `options.services`. Both answer
 * each file request with the file and its transitive imports as serialized FileDescriptorProtos;
 * as grpc-go does, an import is sent once per stream, the file asked for every time.
 */
export function createReflectionServices(options: ReflectionOptions): ReflectionServices {
  const index = createIndex([...options.services, v1.ServerReflection, v1alpha.ServerReflection]);
  return {
    v1: {
      serverReflectionInfo: handler(index, (request: v1.ServerReflectionRequest, answer) =>
        create(v1.ServerReflectionResponseSchema, {
          validHost: request.host,
          originalRequest: request,
          messageResponse: answer,
        }),
      ),
    },
    v1alpha: {
      serverReflectionInfo: handler(index, (request: v1alpha.ServerReflectionRequest, answer) =>
        create(v1alpha.ServerReflectionResponseSchema, {
          validHost: request.host,
          originalRequest: request,
          messageResponse: answer,
        }),
      ),
    },
  };
}

/** Serves both reflection services on `router`, for `options.services`. */
export function registerReflection(
  router: ConnectRouter,
  options: ReflectionOptions,
): ConnectRouter {
  const { v1: v1Impl, v1alpha: v1alphaImpl } = createReflectionServices(options);
  return router.service(v1.ServerReflection, v1Impl).service(v1alpha.ServerReflection, v1alphaImpl);
}

function handler<Req extends Request, Res>(
  index: Index,
  respond: (request: Req, answer: Answer) => Res,
) {
  return async function* (requests: AsyncIterable<Req>) {
    const sent = new Set<string>();
    for await (const request of requests) yield respond(request, answer(index, sent, request));
  };
}

function answer(index: Index, sent: Set<string>, request: Request): Answer {
  const { messageRequest } = request;
  switch (messageRequest.case) {
    case "listServices":
      return {
        case: "listServicesResponse",
        value: { service: index.services.map((name) => ({ name })) },
      };
    case "fileByFilename":
      return files(
        index,
        sent,
        index.files.get(messageRequest.value),
        `file "${messageRequest.value}"`,
      );
    case "fileContainingSymbol":
      return files(
        index,
        sent,
        index.symbols.get(messageRequest.value),
        `symbol "${messageRequest.value}"`,
      );
    case "fileContainingExtension": {
      const { containingType, extensionNumber } = messageRequest.value;
      const file = index.extensions.get(containingType)?.get(extensionNumber);
      return files(index, sent, file, `extension ${extensionNumber} of "${containingType}"`);
    }
    case "allExtensionNumbersOfType": {
      const type = messageRequest.value;
      if (!index.messages.has(type)) return notFound(`message type "${type}"`);
      const numbers = [...(index.extensions.get(type)?.keys() ?? [])].sort((a, b) => a - b);
      return {
        case: "allExtensionNumbersResponse",
        value: { baseTypeName: type, extensionNumber: numbers },
      };
    }
    default:
      throw new ConnectError(
        "reflection request sets none of its message_request fields",
        Code.InvalidArgument,
      );
  }
}

/** The file and its transitive imports, breadth first, leaving out imports sent before. */
function files(index: Index, sent: Set<string>, file: DescFile | undefined, what: string): Answer {
  if (file === undefined) return notFound(what);
  const queue = [file];
  const visited = new Set([file.proto.name]);
  const fileDescriptorProto: Uint8Array[] = [];
  for (const [i, current] of queue.entries()) {
    if (i === 0 || !sent.has(current.proto.name)) {
      sent.add(current.proto.name);
      fileDescriptorProto.push(encode(index, current));
    }
    for (const dependency of current.dependencies) {
      if (visited.has(dependency.proto.name)) continue;
      visited.add(dependency.proto.name);
      queue.push(dependency);
    }
  }
  return { case: "fileDescriptorResponse", value: { fileDescriptorProto } };
}

function encode(index: Index, file: DescFile): Uint8Array {
  const cached = index.encoded.get(file);
  if (cached !== undefined) return cached;
  const bytes = toBinary(FileDescriptorProtoSchema, file.proto);
  index.encoded.set(file, bytes);
  return bytes;
}

function notFound(what: string): Answer {
  return {
    case: "errorResponse",
    value: { errorCode: Code.NotFound, errorMessage: `${what} not found` },
  };
}

function createIndex(services: DescService[]): Index {
  const index: Index = {
    services: [...new Set(services.map((service) => service.typeName))].sort(),
    files: new Map(),
    encoded: new Map(),
    symbols: new Map(),
    messages: new Set(),
    extensions: new Map(),
  };
  const visit = (file: DescFile) => {
    if (index.files.has(file.proto.name)) return;
    index.files.set(file.proto.name, file);
    indexSymbols(index, file);
    for (const dependency of file.dependencies) visit(dependency);
  };
  for (const service of services) visit(service.file);
  return index;
}

/** Records every name `file` declares, scoped as protoc scopes them (enum values beside their enum). */
function indexSymbols(index: Index, file: DescFile) {
  const add = (name: string) => {
    if (!index.symbols.has(name)) index.symbols.set(name, file);
  };
  const qualify = (scope: string, name: string) => (scope === "" ? name : `${scope}.${name}`);
  const addExtensions = (scope: string, extensions: FieldDescriptorProto[]) => {
    for (const extension of extensions) {
      add(qualify(scope, extension.name));
      const extendee = extension.extendee.replace(/^\./, "");
      const byNumber = index.extensions.get(extendee) ?? new Map<number, DescFile>();
      index.extensions.set(extendee, byNumber);
      if (!byNumber.has(extension.number)) byNumber.set(extension.number, file);
    }
  };
  const addEnums = (scope: string, enums: EnumDescriptorProto[]) => {
    for (const enumType of enums) {
      add(qualify(scope, enumType.name));
      for (const value of enumType.value) add(qualify(scope, value.name));
    }
  };
  const addMessages = (scope: string, messages: DescriptorProto[]) => {
    for (const message of messages) {
      const name = qualify(scope, message.name);
      add(name);
      index.messages.add(name);
      for (const member of [...message.field, ...message.oneofDecl]) add(`${name}.${member.name}`);
      addMessages(name, message.nestedType);
      addEnums(name, message.enumType);
      addExtensions(name, message.extension);
    }
  };
  const { proto } = file;
  addMessages(proto.package, proto.messageType);
  addEnums(proto.package, proto.enumType);
  addExtensions(proto.package, proto.extension);
  for (const service of proto.service) {
    const name = qualify(proto.package, service.name);
    add(name);
    for (const method of service.method) add(`${name}.${method.name}`);
  }
}
