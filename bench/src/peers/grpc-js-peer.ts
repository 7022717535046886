/**
 * A bare @grpc/grpc-js server answering `/user.v1.UserService/GetUser` with a fixed user and
 * `/user.v1.UserService/StreamUserActivities` with a fixed number of activities, (de)serialized by
 * protobuf-es. No interceptors, no store. Prints the port once listening.
 *
 *   node --conditions=source bench/src/peers/grpc-js-peer.ts [PORT]
 */
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  type GetUserRequest,
  GetUserRequestSchema,
  type GetUserResponse,
  GetUserResponseSchema,
  type StreamUserActivitiesRequest,
  StreamUserActivitiesRequestSchema,
  type UserActivity,
  UserActivitySchema,
} from "@keel/gen/user/v1/user_pb";
import {
  benchActivity,
  benchUserResponse,
  defaultStreamMessages,
  portArgument,
} from "./fixtures.ts";

const service: grpc.ServiceDefinition = {
  getUser: {
    path: "/user.v1.UserService/GetUser",
    requestStream: false,
    responseStream: false,
    requestDeserialize: (buf: Buffer): GetUserRequest => fromBinary(GetUserRequestSchema, buf),
    responseSerialize: (res: GetUserResponse) => Buffer.from(toBinary(GetUserResponseSchema, res)),
    requestSerialize: (req: GetUserRequest) => Buffer.from(toBinary(GetUserRequestSchema, req)),
    responseDeserialize: (buf: Buffer): GetUserResponse => fromBinary(GetUserResponseSchema, buf),
  },
  streamUserActivities: {
    path: "/user.v1.UserService/StreamUserActivities",
    requestStream: false,
    responseStream: true,
    requestDeserialize: (buf: Buffer): StreamUserActivitiesRequest =>
      fromBinary(StreamUserActivitiesRequestSchema, buf),
    responseSerialize: (res: UserActivity) => Buffer.from(toBinary(UserActivitySchema, res)),
    requestSerialize: (req: StreamUserActivitiesRequest) =>
      Buffer.from(toBinary(StreamUserActivitiesRequestSchema, req)),
    responseDeserialize: (buf: Buffer): UserActivity => fromBinary(UserActivitySchema, buf),
  },
};

const getUser: grpc.handleUnaryCall<GetUserRequest, GetUserResponse> = (call, callback) => {
  callback(null, benchUserResponse(call.request.userId));
};

const streamUserActivities: grpc.handleServerStreamingCall<
  StreamUserActivitiesRequest,
  UserActivity
> = (call) => {
  let n = 0;
  // Respect flow control: write until the stream asks to wait, go on when it drains.
  const pump = () => {
    while (n < defaultStreamMessages) {
      if (call.cancelled) return;
      n++;
      if (!call.write(benchActivity(n))) {
        call.once("drain", pump);
        return;
      }
    }
    call.end();
  };
  pump();
};

const server = new grpc.Server({ "grpc.max_concurrent_streams": 1000 });
server.addService(service, { getUser, streamUserActivities });
server.bindAsync(
  `127.0.0.1:${portArgument(process.argv)}`,
  grpc.ServerCredentials.createInsecure(),
  (err, port) => {
    if (err !== null) throw err;
    process.stdout.write(`${port}\n`);
  },
);
process.on("SIGTERM", () => process.exit(0));
