import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  type DescFile,
  equals,
  fromBinary,
  type MessageInitShape,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  createClient,
  createRouterTransport,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import {
  connectNodeAdapter,
  createConnectTransport,
  createGrpcTransport,
} from "@connectrpc/connect-node";
import * as v1 from "@keel/gen/grpc/reflection/v1/reflection_pb";
import * as v1alpha from "@keel/gen/grpc/reflection/v1alpha/reflection_pb";
import { Health } from "@keel/gen/health/v1/health_pb";
import { OrderService } from "@keel/gen/order/v1/order_pb";
import { file_policy_v1_policy } from "@keel/gen/policy/v1/policy_pb";
import { file_user_v1_user, UserService } from "@keel/gen/user/v1/user_pb";
import { createReflectionServices, registerReflection } from "./reflection.ts";

type RequestInit = MessageInitShape<typeof v1.ServerReflectionRequestSchema>;

const services = [UserService, OrderService, Health];
const serviceNames = [
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
  "order.v1.OrderService",
  "user.v1.UserService",
];

/** Sends `requests` on one v1 reflection stream and returns every response. */
async function reflect(transport: Transport, requests: RequestInit[]) {
  const client = createClient(v1.ServerReflection, transport);
  const responses: v1.ServerReflectionResponse[] = [];
  for await (const response of client.serverReflectionInfo(
    (async function* () {
      yield* requests;
    })(),
  )) {
    responses.push(response);
  }
  return responses;
}

/** The names of the files in a file_descriptor_response, in order. */
function fileNames(response: v1.ServerReflectionResponse | undefined): string[] {
  assert.equal(response?.messageResponse.case, "fileDescriptorResponse");
  return response.messageResponse.value.fileDescriptorProto.map(
    (bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name,
  );
}

// Plain objects, not v1 messages, so that v1alpha calls take them too.
function fileRequest(fileByFilename: string) {
  return { messageRequest: { case: "fileByFilename" as const, value: fileByFilename } };
}

function symbolRequest(fileContainingSymbol: string) {
  return { messageRequest: { case: "fileContainingSymbol" as const, value: fileContainingSymbol } };
}

// user.proto and its imports, breadth first, as grpc-go answers.
const userFiles = [
  "user/v1/user.proto",
  "google/api/annotations.proto",
  "google/protobuf/field_mask.proto",
  "google/protobuf/timestamp.proto",
  "policy/v1/policy.proto",
  "google/api/http.proto",
  "google/protobuf/descriptor.proto",
];

describe("createReflectionServices", () => {
  const transport = createRouterTransport((router) => registerReflection(router, { services }));

  it("lists the given services and both reflection services, echoing host and request", async () => {
    const request: RequestInit = {
      host: "api.example",
      messageRequest: { case: "listServices", value: "*" },
    };
    const [response, ...rest] = await reflect(transport, [request]);
    assert.equal(rest.length, 0);
    assert.equal(response?.validHost, "api.example");
    assert.equal(response.originalRequest?.host, "api.example");
    assert.deepEqual(response.originalRequest?.messageRequest, {
      case: "listServices",
      value: "*",
    });
    assert.equal(response.messageResponse.case, "listServicesResponse");
    assert.deepEqual(
      response.messageResponse.value.service.map((service) => service.name),
      serviceNames,
    );
  });

  it("answers a file with its transitive imports, each import once per stream", async () => {
    const responses = await reflect(transport, [
      fileRequest("user/v1/user.proto"),
      fileRequest("order/v1/order.proto"),
      fileRequest("user/v1/user.proto"),
    ]);
    assert.deepEqual(responses.map(fileNames), [
      userFiles,
      ["order/v1/order.proto"],
      ["user/v1/user.proto"],
    ]);
    // A new stream starts over.
    assert.deepEqual(
      (await reflect(transport, [fileRequest("order/v1/order.proto")])).map(fileNames),
      [
        [
          "order/v1/order.proto",
          "google/api/annotations.proto",
          "google/protobuf/timestamp.proto",
          "policy/v1/policy.proto",
          "google/api/http.proto",
          "google/protobuf/descriptor.proto",
        ],
      ],
    );
  });

  it("sends the FileDescriptorProtos the services were generated from", async () => {
    const [response] = await reflect(transport, [fileRequest("user/v1/user.proto")]);
    assert.equal(response?.messageResponse.case, "fileDescriptorResponse");
    const files = response.messageResponse.value.fileDescriptorProto.map((bytes) =>
      fromBinary(FileDescriptorProtoSchema, bytes),
    );
    const user = files.find((f) => f.name === "user/v1/user.proto");
    const policy = files.find((f) => f.name === "policy/v1/policy.proto");
    const same = (file: DescFile, proto: typeof user) =>
      proto !== undefined && equals(FileDescriptorProtoSchema, file.proto, proto);
    assert.equal(same(file_user_v1_user, user), true);
    assert.equal(same(file_policy_v1_policy, policy), true);
  });

  it("finds the file of every kind of symbol", async () => {
    const symbols: Record<string, string> = {
      "user.v1.UserService": "user/v1/user.proto",
      "user.v1.UserService.GetUser": "user/v1/user.proto",
      "user.v1.GetUserRequest": "user/v1/user.proto",
      "user.v1.GetUserRequest.user_id": "user/v1/user.proto",
      "user.v1.User.MetadataEntry": "user/v1/user.proto",
      "user.v1.UserStatus": "user/v1/user.proto",
      "user.v1.USER_STATUS_ACTIVE": "user/v1/user.proto",
      "order.v1.OrderService.TrackOrder": "order/v1/order.proto",
      "policy.v1.method": "policy/v1/policy.proto",
      "policy.v1.AccessRule": "policy/v1/policy.proto",
      "google.protobuf.Timestamp": "google/protobuf/timestamp.proto",
      "google.protobuf.MethodOptions": "google/protobuf/descriptor.proto",
      "grpc.health.v1.Health.Watch": "health/v1/health.proto",
      "grpc.health.v1.HealthCheckResponse.ServingStatus": "health/v1/health.proto",
      "grpc.health.v1.HealthCheckResponse.SERVICE_UNKNOWN": "health/v1/health.proto",
      "grpc.reflection.v1.ServerReflectionRequest.message_request":
        "grpc/reflection/v1/reflection.proto",
      "grpc.reflection.v1alpha.ServerReflection": "grpc/reflection/v1alpha/reflection.proto",
    };
    const responses = await reflect(transport, Object.keys(symbols).map(symbolRequest));
    assert.deepEqual(
      responses.map((response) => fileNames(response)[0]),
      Object.values(symbols),
    );
  });

  it("finds extensions by extendee and number, and lists the numbers of a type", async () => {
    const responses = await reflect(transport, [
      {
        messageRequest: {
          case: "fileContainingExtension",
          value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 50100 },
        },
      },
      {
        messageRequest: {
          case: "allExtensionNumbersOfType",
          value: "google.protobuf.MethodOptions",
        },
      },
      { messageRequest: { case: "allExtensionNumbersOfType", value: "user.v1.User" } },
    ]);
    assert.deepEqual(fileNames(responses[0]), [
      "policy/v1/policy.proto",
      "google/protobuf/descriptor.proto",
    ]);
    assert.deepEqual(
      responses.slice(1).map((response) => response.messageResponse.value),
      // google.api.http and policy.v1.method.
      [create("google.protobuf.MethodOptions", [50100, 72295728]), create("user.v1.User", [])],
    );
    function create(baseTypeName: string, extensionNumber: number[]) {
      return {
        $typeName: "grpc.reflection.v1.ExtensionNumberResponse",
        baseTypeName,
        extensionNumber,
      };
    }
  });

  it("answers unknown names with NOT_FOUND error responses and keeps the stream open", async () => {
    const responses = await reflect(transport, [
      fileRequest("nope/v1/nope.proto"),
      symbolRequest("user.v1.Nope"),
      {
        messageRequest: {
          case: "fileContainingExtension",
          value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 1 },
        },
      },
      { messageRequest: { case: "allExtensionNumbersOfType", value: "user.v1.Nope" } },
      { messageRequest: { case: "listServices", value: "" } },
    ]);
    assert.deepEqual(
      responses.map((response) =>
        response.messageResponse.case === "errorResponse"
          ? [response.messageResponse.value.errorCode, response.messageResponse.value.errorMessage]
          : response.messageResponse.case,
      ),
      [
        [Code.NotFound, 'file "nope/v1/nope.proto" not found'],
        [Code.NotFound, 'symbol "user.v1.Nope" not found'],
        [Code.NotFound, 'extension 1 of "google.protobuf.MethodOptions" not found'],
        [Code.NotFound, 'message type "user.v1.Nope" not found'],
        "listServicesResponse",
      ],
    );
  });

  it("fails the stream with INVALID_ARGUMENT for a request that asks nothing", async () => {
    await assert.rejects(
      reflect(transport, [{ host: "h" }]),
      (error) =>
        error instanceof ConnectError &&
        error.code === Code.InvalidArgument &&
        error.rawMessage === "reflection request sets none of its message_request fields",
    );
  });

  it("answers v1alpha exactly as v1", async () => {
    const { v1alpha: impl } = createReflectionServices({ services });
    const alphaTransport = createRouterTransport((router) =>
      router.service(v1alpha.ServerReflection, impl),
    );
    const client = createClient(v1alpha.ServerReflection, alphaTransport);
    const requests = [
      { messageRequest: { case: "listServices", value: "" } },
      fileRequest("user/v1/user.proto"),
      symbolRequest("user.v1.Nope"),
    ] as const;
    const responses: v1alpha.ServerReflectionResponse[] = [];
    for await (const response of client.serverReflectionInfo(
      (async function* () {
        yield* requests;
      })(),
    )) {
      responses.push(response);
    }
    assert.equal(responses[0]?.$typeName, "grpc.reflection.v1alpha.ServerReflectionResponse");
    assert.equal(
      responses[0]?.originalRequest?.$typeName,
      "grpc.reflection.v1alpha.ServerReflectionRequest",
    );
    // The versions are the same on the wire, so the same answers encode to the same bytes.
    const v1Responses = await reflect(transport, [...requests]);
    assert.deepEqual(
      responses.map((response) => toBinary(v1alpha.ServerReflectionResponseSchema, response)),
      v1Responses.map((response) => toBinary(v1.ServerReflectionResponseSchema, response)),
    );
    assert.equal(v1Responses[2]?.messageResponse.case, "errorResponse");
  });
});

/** A real HTTP/2 server on a free port, with the given routes. */
async function startServer(routes: (router: ConnectRouter) => void, interceptors: Interceptor[]) {
  const server = http2.createServer(connectNodeAdapter({ routes, interceptors }));
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) session.destroy();
      }),
  };
}

// buf's npm launcher, run with this Node rather than whatever `node` is on PATH.
const buf = fileURLToPath(new URL("../../../node_modules/@bufbuild/buf/bin/buf", import.meta.url));

/** Runs `buf curl` (no shell) and returns its stdout; rejects on a non-zero exit. */
async function bufCurl(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [buf, "curl", ...args], {
    timeout: 30_000,
  });
  return stdout;
}

describe("reflection on a real server", () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  /** The service of every call the server saw, in order. */
  const called: string[] = [];
  before(async () => {
    server = await startServer(
      (router) => {
        registerReflection(router, { services: [UserService] });
        router.service(UserService, {
          getUser: (request) => ({
            user: { userId: request.userId, username: `user${request.userId}` },
          }),
          async *streamUserActivities(request) {
            for (let i = 1n; i <= 2n; i++) {
              yield { activityId: i, userId: request.userId, action: "user.login" };
            }
          },
        });
      },
      [
        (next) => (request) => {
          called.push(request.service.typeName);
          return next(request);
        },
      ],
    );
  });
  after(() => server.close());

  for (const [name, transport] of [
    ["grpc", () => createGrpcTransport({ baseUrl: server.url })],
    ["connect", () => createConnectTransport({ baseUrl: server.url, httpVersion: "2" })],
  ] as const) {
    it(`answers a bidi stream over ${name}`, async () => {
      const responses = await reflect(transport(), [
        { messageRequest: { case: "listServices", value: "" } },
        symbolRequest("user.v1.UserService"),
      ]);
      assert.deepEqual(responses[0]?.messageResponse.value, {
        $typeName: "grpc.reflection.v1.ListServiceResponse",
        service: [
          "grpc.reflection.v1.ServerReflection",
          "grpc.reflection.v1alpha.ServerReflection",
          "user.v1.UserService",
        ].map((name) => ({ $typeName: "grpc.reflection.v1.ServiceResponse", name })),
      });
      assert.deepEqual(fileNames(responses[1]), userFiles);
    });
  }

  it("is found by buf curl with no --reflect-protocol, which asks v1 first", async () => {
    called.length = 0;
    const stdout = await bufCurl(
      "-d",
      '{"user_id":"2"}',
      `${server.url}/user.v1.UserService/GetUser`,
    );
    assert.deepEqual(JSON.parse(stdout), { user: { userId: "2", username: "user2" } });
    assert.deepEqual(called, ["grpc.reflection.v1.ServerReflection", "user.v1.UserService"]);
  });

  for (const [reflectProtocol, reflectionService] of [
    ["grpc-v1", "grpc.reflection.v1.ServerReflection"],
    ["grpc-v1alpha", "grpc.reflection.v1alpha.ServerReflection"],
  ] as const) {
    describe(`buf curl --reflect-protocol ${reflectProtocol}`, () => {
      const reflecting = ["--reflect-protocol", reflectProtocol, "--protocol", "grpc"];

      it("lists the services", async () => {
        called.length = 0;
        const stdout = await bufCurl(...reflecting, "--list-services", server.url);
        assert.equal(
          stdout,
          "grpc.reflection.v1.ServerReflection\n" +
            "grpc.reflection.v1alpha.ServerReflection\n" +
            "user.v1.UserService\n",
        );
        assert.deepEqual([...new Set(called)], [reflectionService]);
      });

      it("lists the methods, sorted by buf", async () => {
        const stdout = await bufCurl(...reflecting, "--list-methods", server.url);
        assert.equal(
          stdout,
          [
            "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            // Every method of the service, as buf sorts them: by name.
            ...UserService.methods.map((m) => `${UserService.typeName}/${m.name}`).sort(),
            "",
          ].join("\n"),
        );
      });

      for (const protocol of ["grpc", "grpcweb", "connect"]) {
        it(`calls GetUser over ${protocol} with types resolved through reflection`, async () => {
          called.length = 0;
          const stdout = await bufCurl(
            "--reflect-protocol",
            reflectProtocol,
            "--protocol",
            protocol,
            "--http2-prior-knowledge",
            "-d",
            '{"user_id":"1"}',
            `${server.url}/user.v1.UserService/GetUser`,
          );
          assert.deepEqual(JSON.parse(stdout), { user: { userId: "1", username: "user1" } });
          assert.deepEqual(called, [reflectionService, "user.v1.UserService"]);
        });
      }

      it("reads a server stream", async () => {
        const stdout = await bufCurl(
          ...reflecting,
          "-d",
          '{"user_id":"7"}',
          `${server.url}/user.v1.UserService/StreamUserActivities`,
        );
        assert.deepEqual(
          stdout
            .trim()
            .split(/\n(?=\{)/)
            .map((json) => JSON.parse(json)),
          [
            { activityId: "1", userId: "7", action: "user.login" },
            { activityId: "2", userId: "7", action: "user.login" },
          ],
        );
      });
    });
  }
});
