/**
 * The rows of bench/src/protocols.ts: GetUser by protocol (closed and open loop) and the user
 * service's streaming RPCs over gRPC and Connect.
 */
import {
  StreamUserActivitiesRequestSchema,
  UpdateUserRequestSchema,
  UserStatusUpdateSchema,
} from "@keel/gen/user/v1/user_pb";
import { grpcFrame, lengthPrefixed } from "./grpc-frame.ts";
import { getUser, type StreamCall } from "./scenarios.ts";

/** One way of calling GetUser. */
export interface ProtocolRow {
  id: string;
  title: string;
  http1: boolean;
  /** The path (with its query), given the user's id. */
  path: (userId: string) => string;
  contentType: string | null;
  /** The body, given the request message's bytes and JSON; none: a GET. */
  body?: (proto: Uint8Array, json: string) => Uint8Array;
}

const method = `/${getUser}`;

/** Every GetUser row, in the order of the report. */
export const protocolRows: ProtocolRow[] = [
  {
    id: "grpc",
    title: "gRPC",
    http1: false,
    path: () => method,
    contentType: "application/grpc",
    body: (proto) => lengthPrefixed(proto),
  },
  {
    id: "grpc-web",
    title: "gRPC-Web (binary)",
    http1: false,
    path: () => method,
    contentType: "application/grpc-web+proto",
    body: (proto) => lengthPrefixed(proto),
  },
  {
    id: "connect-proto",
    title: "Connect, application/proto",
    http1: false,
    path: () => method,
    contentType: "application/proto",
    body: (proto) => proto,
  },
  {
    id: "connect-json",
    title: "Connect, application/json",
    http1: false,
    path: () => method,
    contentType: "application/json",
    body: (_, json) => Buffer.from(json),
  },
  {
    id: "connect-json-h1",
    title: "Connect JSON over HTTP/1.1",
    http1: true,
    path: () => method,
    contentType: "application/json",
    body: (_, json) => Buffer.from(json),
  },
  {
    id: "connect-get",
    title: "Connect GET",
    http1: false,
    path: (userId) =>
      `${method}?connect=v1&encoding=json&message=${encodeURIComponent(JSON.stringify({ userId }))}`,
    contentType: null,
  },
  {
    id: "rest-h1",
    title: "REST GET /api/v1/users/{id}, HTTP/1.1",
    http1: true,
    path: (userId) => `/api/v1/users/${userId}`,
    contentType: null,
  },
  {
    id: "rest-h2",
    title: "REST GET /api/v1/users/{id}, HTTP/2",
    http1: false,
    path: (userId) => `/api/v1/users/${userId}`,
    contentType: null,
  },
];

/** GetUser's rows measured again in an open loop, at half their closed-loop capacity. */
export const openLoopRows = ["grpc", "connect-json"].map((id) => {
  const row = protocolRows.find((r) => r.id === id) as ProtocolRow;
  return { id: `open-loop-${id}`, row };
});

/** One streaming RPC of the user service, as the benchmark calls it. */
export interface StreamingRpc {
  id: "server-stream" | "client-stream" | "bidi-stream";
  title: string;
  /** A call that streams `messages` messages (sent, received or both), about user `userId`. */
  call(userId: bigint, messages: number): Omit<StreamCall, "protocol">;
}

/** The user service's three streaming RPCs, each on the benchmark's user. */
export const streamingRpcs: StreamingRpc[] = [
  {
    id: "server-stream",
    title: "StreamUserActivities (server streaming)",
    // The user's recorded activities, read from SQLite; prepareKeel records them.
    call: (userId, messages) => ({
      path: "/user.v1.UserService/StreamUserActivities",
      bodyBase64: grpcFrame(StreamUserActivitiesRequestSchema, { userId }).toString("base64"),
      messagesPerStream: messages,
    }),
  },
  {
    id: "client-stream",
    title: "BatchUpdateUsers (client streaming)",
    // Each update sets the tags the user was created with, which prepareKeel leaves in place:
    // read, validated and compared, but not written, so that rounds stay alike.
    call: (userId, messages) => ({
      path: "/user.v1.UserService/BatchUpdateUsers",
      bodyBase64: repeated(
        grpcFrame(UpdateUserRequestSchema, {
          userId,
          user: { tags: ["bench"] },
          updateMask: { paths: ["tags"] },
        }),
        messages,
      ),
      messagesPerStream: 1,
      endsItself: true,
      messagesPerCall: messages,
    }),
  },
  {
    id: "bidi-stream",
    title: "SyncUserStatus (bidi streaming)",
    // Each message follows the user, answered at once with its status (read from SQLite); the
    // call ends when the client has sent them all and had every answer.
    call: (userId, messages) => ({
      path: "/user.v1.UserService/SyncUserStatus",
      bodyBase64: repeated(grpcFrame(UserStatusUpdateSchema, { userId }), messages),
      messagesPerStream: messages,
      endsItself: true,
    }),
  },
];

/** The protocols streaming calls are measured over. */
export const streamProtocols = [
  { id: "grpc", title: "gRPC" },
  { id: "connect", title: "Connect (application/connect+proto)" },
] as const;

/** Every streaming row: each RPC over each protocol, ids like `server-stream-grpc`. */
export const streamRows = streamingRpcs.flatMap((rpc) =>
  streamProtocols.map((protocol) => ({ id: `${rpc.id}-${protocol.id}`, rpc, protocol })),
);

/** The rows of one run. */
export type SelectedRows = ReturnType<typeof selectRows>;

/** The rows `--only` names (all when it is not given); an unknown id is an error. */
export function selectRows(only: readonly string[] | undefined) {
  const ids = [...protocolRows, ...streamRows, ...openLoopRows].map((row) => row.id);
  const unknown = only?.find((id) => !ids.includes(id));
  if (unknown !== undefined)
    throw new Error(`--only: no row "${unknown}"; rows: ${ids.join(", ")}`);
  const picked = <T extends { id: string }>(rows: readonly T[]) =>
    rows.filter((row) => only === undefined || only.includes(row.id));
  const selected = {
    unary: picked(protocolRows),
    stream: picked(streamRows),
    openLoop: picked(openLoopRows),
  };
  const orphan = selected.openLoop.find(({ row }) => !selected.unary.includes(row));
  if (orphan !== undefined) {
    throw new Error(`--only: ${orphan.id} needs ${orphan.row.id}, whose capacity sets its rate`);
  }
  return selected;
}

/** The open loop's calls/s: half of `capacity` calls/s, at least 1. */
export function openLoopRate(capacity: number): number {
  return Math.max(1, Math.round(capacity / 2));
}

function repeated(frame: Buffer, times: number): string {
  return Buffer.concat(Array.from({ length: times }, () => frame)).toString("base64");
}
