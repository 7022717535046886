import { randomBytes } from "node:crypto";
import { create, type DescMethod, toBinary } from "@bufbuild/protobuf";
import type { Protocol, TlsOptions } from "@keel/clients";
import { OrderService, TrackOrderRequestSchema } from "@keel/gen/order/v1/order_pb";
import {
  CreateUserRequestSchema,
  GetUserRequestSchema,
  ListUsersRequestSchema,
  UserService,
} from "@keel/gen/user/v1/user_pb";
import type { Call } from "./load-generator.ts";
import type { PerfMethod } from "./perf-methods.ts";
import { createWireCall, WireConnection } from "./wire-call.ts";

export interface PerfCallsOptions {
  method: PerfMethod;
  baseUrl: string;
  protocol: Protocol;
  /** CA and client certificate for an https:// server, when given. */
  tls: TlsOptions | undefined;
  /** Sent with every call, when set. */
  token: string | undefined;
  /** Deadline of each call, in milliseconds. */
  timeoutMs: number;
  /** Workers: calls in flight at once. */
  concurrency: number;
  /** Connections; worker i uses connection i mod connections. */
  connections: number;
  /** GetUser's user. */
  userId: bigint;
  /** TrackOrder's order: a finished one, so that its stream ends after the history. */
  orderId: bigint;
  /** ListUsers's page size. */
  pageSize: number;
  /** Counts the messages that streaming calls receive. */
  counters: { messages: number };
}

export interface PerfCalls {
  /** One call per worker. */
  calls: Call[];
  /** Stops the deadline timer and closes the connections. */
  close(): void;
}

/**
 * One call per worker, spread over `connections` HTTP/2 connections. Requests are serialized
 * once (for CreateUser, whose usernames must differ, once per call), and one timer enforces the
 * deadline of every call in flight, so that a call costs no more than its HTTP/2 stream.
 */
export function createPerfCalls(options: PerfCallsOptions): PerfCalls {
  const connections = Array.from(
    { length: options.connections },
    () => new WireConnection(options.baseUrl, options.tls),
  );
  const prefix = new URL(options.baseUrl).pathname.replace(/\/+$/, "");
  const { method, request, streaming } = requestOf(options);
  const path = `${prefix}/${method.parent.typeName}/${method.name}`;
  const wireCalls = Array.from({ length: options.concurrency }, (_, worker) =>
    createWireCall({
      connection: connections[worker % connections.length] as WireConnection,
      protocol: options.protocol,
      path,
      request: typeof request === "function" ? request(worker) : request,
      streaming,
      token: options.token,
      timeoutMs: options.timeoutMs,
      counters: options.counters,
    }),
  );
  const sweep = setInterval(
    () => {
      const startedBefore = performance.now() - options.timeoutMs;
      for (const wireCall of wireCalls) wireCall.expire(startedBefore);
    },
    Math.min(100, Math.max(10, options.timeoutMs / 10)),
  );
  sweep.unref();
  return {
    calls: wireCalls.map((c) => c.call),
    close() {
      clearInterval(sweep);
      for (const connection of connections) connection.close();
    },
  };
}

function requestOf(options: PerfCallsOptions): {
  method: DescMethod;
  request: Uint8Array | ((worker: number) => () => Uint8Array);
  streaming: boolean;
} {
  switch (options.method) {
    case "GetUser":
      return {
        method: UserService.method.getUser,
        request: toBinary(
          GetUserRequestSchema,
          create(GetUserRequestSchema, { userId: options.userId }),
        ),
        streaming: false,
      };
    case "ListUsers":
      return {
        method: UserService.method.listUsers,
        request: toBinary(
          ListUsersRequestSchema,
          create(ListUsersRequestSchema, { pageSize: options.pageSize }),
        ),
        streaming: false,
      };
    case "CreateUser":
      return {
        method: UserService.method.createUser,
        // Unique names: this run, this worker, this call.
        request: (worker) => {
          const prefix = `p${randomBytes(3).toString("hex")}-${worker}-`;
          const message = create(CreateUserRequestSchema, { password: "perf password 1" });
          let n = 0;
          return () => {
            message.username = `${prefix}${++n}`;
            message.email = `${message.username}@example.com`;
            return toBinary(CreateUserRequestSchema, message);
          };
        },
        streaming: false,
      };
    case "TrackOrder":
      return {
        method: OrderService.method.trackOrder,
        request: toBinary(
          TrackOrderRequestSchema,
          create(TrackOrderRequestSchema, { orderId: options.orderId }),
        ),
        streaming: true,
      };
  }
}
