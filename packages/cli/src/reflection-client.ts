import { create, createFileRegistry, type FileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createTransport, type Protocol, type TlsOptions } from "@keel/clients";
import {
  ServerReflection,
  type ServerReflectionRequest,
  ServerReflectionRequestSchema,
  type ServerReflectionResponse,
} from "@keel/gen/grpc/reflection/v1/reflection_pb";

export interface ReflectionClientOptions {
  baseUrl: string;
  protocol: Protocol;
  token: string | undefined;
  tls: TlsOptions | undefined;
  /** Deadline of each question, connecting included, in ms. */
  timeoutMs: number;
}

/** Questions to a server's gRPC reflection service (grpc.reflection.v1). */
export interface ReflectionClient {
  /** The services the server serves, by full name, sorted. */
  listServices(): Promise<string[]>;
  /**
   * The descriptors of the file declaring `symbol` (a service, method, message, field, enum or
   * enum value, by full name) and of every file it imports, as a registry to look things up in.
   * An unknown symbol is a ConnectError NOT_FOUND.
   */
  filesOf(symbol: string): Promise<FileRegistry>;
}

/** A reflection client over one of keel's transports (HTTP/2: reflection is a bidi stream). */
export function createReflectionClient(options: ReflectionClientOptions): ReflectionClient {
  const client = createClient(ServerReflection, createTransport(options));
  // One stream per question: the server answers it, then the stream ends.
  const ask = async (
    request: ServerReflectionRequest["messageRequest"],
  ): Promise<ServerReflectionResponse["messageResponse"]> => {
    const requests = (async function* () {
      yield create(ServerReflectionRequestSchema, { messageRequest: request });
    })();
    const stream = client.serverReflectionInfo(requests, { timeoutMs: options.timeoutMs });
    for await (const response of stream) {
      const answer = response.messageResponse;
      if (answer.case === "errorResponse") {
        throw new ConnectError(answer.value.errorMessage, answer.value.errorCode as Code);
      }
      return answer;
    }
    throw new ConnectError("the reflection stream ended without an answer", Code.Internal);
  };
  return {
    async listServices() {
      const answer = await ask({ case: "listServices", value: "" });
      if (answer.case !== "listServicesResponse") throw unexpected(answer.case);
      return answer.value.service.map((s) => s.name).sort();
    },
    async filesOf(symbol) {
      const answer = await ask({ case: "fileContainingSymbol", value: symbol });
      if (answer.case !== "fileDescriptorResponse") throw unexpected(answer.case);
      const [file, ...imports] = answer.value.fileDescriptorProto.map((bytes) =>
        fromBinary(FileDescriptorProtoSchema, bytes),
      );
      if (file === undefined) throw unexpected("no file");
      // The file first, then its imports in any order: each is found by name when needed.
      const byName = new Map(imports.map((f) => [f.name, f]));
      return createFileRegistry(file, (name) => byName.get(name));
    },
  };
}

function unexpected(kind: string | undefined): ConnectError {
  return new ConnectError(`the server answered ${kind ?? "nothing"}`, Code.Internal);
}
