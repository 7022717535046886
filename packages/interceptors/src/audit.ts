import {
  type DescField,
  type DescMessage,
  type DescMethod,
  getOption,
  type Message,
  ScalarType,
} from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { method as policyMethod } from "@keel/gen/policy/v1/policy_pb";
import type { AuditEntry, AuditLog } from "./audit-log.ts";
import { bounded, subjectOf } from "./bounded-text.ts";
import { abortReason, callAborted, whenCallEnds } from "./call-progress.ts";
import type { Next, Request, Response } from "./chain.ts";
import { peerKey, principalKey, requestIdKey } from "./context.ts";
import { perMethod } from "./per-method.ts";
import { tap } from "./streams.ts";

export interface AuditOptions {
  /** Receives one entry per audited call; `createAuditLog` fits. Its `write` must not throw. */
  log: Pick<AuditLog, "write">;
  /**
   * Decides which methods are audited, asked once per method. Default: the methods whose
   * `policy.v1.method` option has `audit: true`.
   */
  isAudited?: (method: DescMethod) => boolean;
}

/** At most this many ids of each kind per entry; the entry says `truncated` when there were more. */
const maxIdsPerKind = 100;

/**
 * Writes one audit entry for every call of an audited method when the call finishes: a unary call
 * when its handler returns or fails, a streaming call when its response stream ends, fails or the
 * client cancels (the outcome is then the cancellation's code, "Canceled" or "DeadlineExceeded").
 *
 * An entry names the caller (`principalKey`), `peerKey`, `requestIdKey`, the outcome and the users
 * and orders the call acted on: every `user_id` and `order_id` field at the top level of each
 * request and response message, or of their top-level `user` and `order` messages. No other field
 * is recorded, so passwords and tokens never reach the log. Stream messages are inspected as they
 * pass, never buffered.
 *
 * Place it before the recovery interceptor, so that it records the code and message clients see
 * rather than the internal error behind them; context values set by interceptors after it (the
 * principal) are read when the call finishes, so they are recorded too.
 */
export function createAuditInterceptor(options: AuditOptions): Interceptor {
  const { log } = options;
  const isAudited = options.isAudited ?? hasAuditPolicy;
  const audited = perMethod(isAudited);

  // A call of a method that is not audited goes straight on, without a promise of its own.
  return (next) => (req) => (audited(req.method) ? auditCall(next, req) : next(req));

  async function auditCall(next: Next, req: Request): Promise<Response> {
    const targets = createTargets();
    let recorded = false;
    const record = (err?: unknown) => {
      if (recorded) return;
      recorded = true;
      // A cancelled call fails because of the cancellation, whatever the handler made of it.
      const failure = callAborted(req) ? (abortReason(req) ?? err) : err;
      const error = failure === undefined ? undefined : ConnectError.from(failure);
      const entry: AuditEntry = {
        time: new Date().toISOString(),
        method: `${req.method.parent.typeName}/${req.method.name}`,
        principal: subjectOf(req.contextValues.get(principalKey)) ?? null,
        peer: req.contextValues.get(peerKey),
        request_id: req.contextValues.get(requestIdKey),
        outcome: error === undefined ? "OK" : Code[error.code],
        targets: targets.toJSON(),
      };
      if (error !== undefined) entry.error = bounded(error.rawMessage);
      log.write(entry);
    };
    whenCallEnds(req, () => record());

    try {
      if (req.stream) {
        const input = req.method.input;
        req = { ...req, message: tap(req.message, (m) => targets.add(input, m)) };
      } else {
        targets.add(req.method.input, req.message);
      }
      const res = await next(req);
      if (!res.stream) {
        targets.add(req.method.output, res.message);
        record();
        return res;
      }
      const output = req.method.output;
      return {
        ...res,
        message: watchResponses(res.message, (m) => targets.add(output, m), record),
      };
    } catch (err) {
      record(err);
      throw err;
    }
  }
}

function hasAuditPolicy(method: DescMethod): boolean {
  return getOption(method, policyMethod).audit;
}

/**
 * Passes the response messages through, showing each to `see`, and calls `done` once the stream
 * ends, fails, or is abandoned by the server (the client went away) before its end.
 */
async function* watchResponses<T>(
  messages: AsyncIterable<T>,
  see: (message: T) => void,
  done: (err?: unknown) => void,
): AsyncIterable<T> {
  let ended = false;
  try {
    for await (const message of messages) {
      see(message);
      yield message;
    }
    ended = true;
    done();
  } catch (err) {
    ended = true;
    done(err);
    throw err;
  } finally {
    if (!ended) done(new ConnectError("the response stream was abandoned", Code.Canceled));
  }
}

/** The ids a call named, collected from its messages. */
interface Targets {
  add(desc: DescMessage, message: Message): void;
  toJSON(): AuditEntry["targets"];
}

function createTargets(): Targets {
  const userIds = new Set<string>();
  const orderIds = new Set<string>();
  let truncated = false;
  const collect = (ids: Set<string>, value: unknown) => {
    if (value === undefined || value === 0n || value === 0) return;
    const id = String(value);
    if (ids.has(id)) return;
    if (ids.size >= maxIdsPerKind) truncated = true;
    else ids.add(id);
  };
  return {
    add(desc, message) {
      for (const { path, field } of idFields(desc)) {
        let holder: unknown = message;
        for (const step of path)
          holder = holder === undefined ? undefined : fieldValue(holder, step);
        if (holder === undefined) continue;
        collect(field.name === "user_id" ? userIds : orderIds, fieldValue(holder, field));
      }
    },
    toJSON: () => ({
      user_ids: [...userIds],
      order_ids: [...orderIds],
      ...(truncated ? { truncated: true as const } : {}),
    }),
  };
}

/** An id field of a message type: `field` of the message reached by following `path`. */
interface IdField {
  path: DescField[];
  field: DescField;
}

const idFieldCache = new WeakMap<DescMessage, IdField[]>();
const idNames = new Set(["user_id", "order_id"]);
const holderNames = new Set(["user", "order"]);
const integerTypes = new Set([
  ScalarType.INT64,
  ScalarType.UINT64,
  ScalarType.SINT64,
  ScalarType.FIXED64,
  ScalarType.SFIXED64,
  ScalarType.INT32,
  ScalarType.UINT32,
  ScalarType.SINT32,
  ScalarType.FIXED32,
  ScalarType.SFIXED32,
]);

/** The `user_id` and `order_id` fields of a message type and of its `user` and `order` fields. */
function idFields(desc: DescMessage): IdField[] {
  let found = idFieldCache.get(desc);
  if (found !== undefined) return found;
  const isId = (f: DescField) =>
    f.fieldKind === "scalar" && idNames.has(f.name) && integerTypes.has(f.scalar);
  found = desc.fields.filter(isId).map((field) => ({ path: [], field }));
  for (const holder of desc.fields) {
    if (holder.fieldKind !== "message" || !holderNames.has(holder.name)) continue;
    for (const field of holder.message.fields.filter(isId)) found.push({ path: [holder], field });
  }
  idFieldCache.set(desc, found);
  return found;
}

/** The value of a field on a message object, undefined when unset (including another oneof case). */
function fieldValue(message: unknown, field: DescField): unknown {
  const record = message as Record<string, unknown>;
  if (field.oneof === undefined) return record[field.localName];
  const oneof = record[field.oneof.localName] as { case?: string; value?: unknown } | undefined;
  return oneof?.case === field.localName ? oneof.value : undefined;
}
