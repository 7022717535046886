import type { IncomingHttpHeaders } from "node:http2";
import type { DescMethod } from "@bufbuild/protobuf";
import type { ConnectError, ContextValues, HandlerContext } from "@connectrpc/connect";
import {
  type Compression,
  createMethodSerializationLookup,
  type MethodSerializationLookup,
} from "@connectrpc/connect/protocol";
import { ByteBudget } from "./byte-budget.ts";
import { type Call, type CallState, type DefaultDeadline, timedOut } from "./call.ts";
import { DeadlineQueue } from "./deadline-queue.ts";
import { IdleWatch } from "./idle-watch.ts";
import { LinkedList } from "./linked-list.ts";
import type { EngineMethod } from "./method-table.ts";
import type { RequestBodyOptions } from "./request-body.ts";

/** What the engine's options resolve to, and what it keeps per method and per connection. */
export interface EngineContext {
  readonly readMaxBytes: number;
  readonly writeMaxBytes: number;
  readonly compressMinBytes: number;
  readonly maxTimeoutMs: number;
  readonly acceptCompression: Compression[];
  /**
   * The `grpc-accept-encoding` every answer carries (the names of `acceptCompression`), so that a
   * client knows what it may compress with; undefined when the engine accepts no compression.
   */
  readonly acceptEncoding: string | undefined;
  readonly contextValues:
    | ((req: { headers: IncomingHttpHeaders; socket: { remoteAddress?: string } }) => ContextValues)
    | undefined;
  readonly requestGate: ((context: HandlerContext) => void | Promise<void>) | undefined;
  /** Told of each call refused before it reached the interceptors (see `EngineOptions`). */
  readonly onRefusal: ((method: DescMethod, error: ConnectError) => void) | undefined;
  /** Refuses a call at once on its method (see `EngineOptions.admit`). */
  readonly admit: ((method: DescMethod) => ConnectError | undefined) | undefined;
  /** The method's (de)serializers, made on its first call. */
  serialization(entry: EngineMethod): MethodSerializationLookup<never, never>;
  /** The limits a request body on `connection` is read within. */
  bodyOptions(connection: object | undefined): RequestBodyOptions;
  /** Counts the call as in flight until it ends; the shutdown signal aborts the calls in flight. */
  track(call: Call): void;
  /** The calls of the deadline the method's calls get when their client sets none; one queue per method. */
  deadlineFor(entry: EngineMethod): DeadlineQueue | undefined;
  /** The calls whose clients set a deadline, under one timer (see `DeadlineQueue`). */
  readonly clientDeadlines: DeadlineQueue;
  /** Tells of each call as it starts, with its context values (see `EngineOptions`). */
  readonly onCallStart: ((values: ContextValues, call: CallState) => void) | undefined;
}

export interface EngineLimits {
  readMaxBytes: number;
  writeMaxBytes: number;
  compressMinBytes: number;
  maxTimeoutMs: number;
  bufferedBytesPerConnection: number;
  bufferedBytesPerProcess: number;
  bodyIdleTimeoutMs: number;
}

/** What the engine is told to do besides its limits (see `EngineOptions`). */
export interface EngineHooks {
  acceptCompression: Compression[];
  contextValues: EngineContext["contextValues"];
  requestGate: EngineContext["requestGate"];
  shutdownSignal: AbortSignal | undefined;
  defaultDeadline: ((method: DescMethod) => DefaultDeadline | undefined) | undefined;
  onCallStart: EngineContext["onCallStart"];
  admit: EngineContext["admit"];
  onRefusal: EngineContext["onRefusal"];
}

export function createEngineContext(limits: EngineLimits, hooks: EngineHooks): EngineContext {
  const {
    acceptCompression,
    contextValues,
    requestGate,
    shutdownSignal,
    defaultDeadline,
    onCallStart,
    admit,
    onRefusal,
  } = hooks;
  const deadlines = new WeakMap<EngineMethod, DeadlineQueue | null>();
  const serializations = new WeakMap<EngineMethod, MethodSerializationLookup<never, never>>();
  const process = new ByteBudget("the server", limits.bufferedBytesPerProcess);
  const connections = new WeakMap<object, RequestBodyOptions>();
  const idle = new IdleWatch(limits.bodyIdleTimeoutMs);
  const orphan: RequestBodyOptions = {
    readMaxBytes: limits.readMaxBytes,
    budget: new ByteBudget("this connection", limits.bufferedBytesPerConnection, process),
    idle,
  };
  const inFlight = new LinkedList<Call>();
  shutdownSignal?.addEventListener(
    "abort",
    () =>
      inFlight.forEach((call) => {
        call.abort(shutdownSignal.reason);
      }),
    { once: true },
  );
  return {
    ...limits,
    acceptCompression,
    acceptEncoding:
      acceptCompression.length > 0 ? acceptCompression.map((c) => c.name).join(",") : undefined,
    contextValues,
    requestGate,
    admit,
    onRefusal,
    serialization(entry) {
      let lookup = serializations.get(entry);
      if (lookup === undefined) {
        lookup = createMethodSerializationLookup(entry.method as never, undefined, undefined, {
          readMaxBytes: limits.readMaxBytes,
          writeMaxBytes: limits.writeMaxBytes,
        }) as MethodSerializationLookup<never, never>;
        serializations.set(entry, lookup);
      }
      return lookup;
    },
    bodyOptions(connection) {
      if (connection === undefined) return orphan;
      let options = connections.get(connection);
      if (options === undefined) {
        options = {
          readMaxBytes: limits.readMaxBytes,
          budget: new ByteBudget("this connection", limits.bufferedBytesPerConnection, process),
          idle,
        };
        connections.set(connection, options);
      }
      return options;
    },
    onCallStart,
    clientDeadlines: new DeadlineQueue(timedOut),
    deadlineFor(entry) {
      if (defaultDeadline === undefined) return undefined;
      let deadline = deadlines.get(entry);
      if (deadline === undefined) {
        const fallback = defaultDeadline(entry.method);
        deadline =
          fallback === undefined ? null : new DeadlineQueue(() => fallback.error(), fallback.ms);
        deadlines.set(entry, deadline);
      }
      return deadline ?? undefined;
    },
    track(call) {
      if (shutdownSignal?.aborted) call.abort(shutdownSignal.reason);
      else call.trackIn(inFlight);
    },
  };
}
