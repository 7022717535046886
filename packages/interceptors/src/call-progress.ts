import { Code, ConnectError, type ContextValues, createContextKey } from "@connectrpc/connect";

/**
 * A call as the transport that runs it tracks it: whether it has ended and why, read without its
 * `AbortSignal` (keel's engine makes a call's signal only when something reads it, and reading it
 * costs an AbortController per call). Set under `callProgressKey` by a transport that arms every
 * deadline of the call on it itself, the client's and the default.
 */
export interface CallProgress {
  /** Whether the call has ended: completed, failed, cancelled, timed out, shut down. */
  readonly isAborted: boolean;
  /** Why it ended early (a ConnectError, as a deadline's or a cancellation's); undefined otherwise. */
  readonly reason: unknown;
  /** Whether a deadline is armed on the call: the client's or the server's default. */
  readonly hasDeadline: boolean;
  /** Calls `listener` once when the call ends (at once if it has), with why. */
  onAbort(listener: (reason: unknown) => void): void;
  /**
   * The call's protocol, as `HandlerContext.protocolName` says it: "grpc", "grpc-web",
   * "connect", "rest" (a REST call, JSON over HTTP, that no content type tells from Connect's).
   */
  readonly protocolName?: string;
}

/** The call's progress, when its transport tracks it (keel's engine does); undefined otherwise. */
export const callProgressKey = createContextKey<CallProgress | undefined>(undefined, {
  description: "call progress",
});

/** The parts of a request the helpers below read. */
interface Tracked {
  readonly contextValues: ContextValues;
  readonly signal: AbortSignal;
}

/** Whether the call has ended (a cancelled or timed-out call has), without making its signal. */
export function callAborted(req: Tracked): boolean {
  const progress = req.contextValues.get(callProgressKey);
  return progress === undefined ? req.signal.aborted : progress.isAborted;
}

/** Why the call ended early; undefined while it runs (or when it completed). */
export function abortReason(req: Tracked): unknown {
  const progress = req.contextValues.get(callProgressKey);
  return progress === undefined ? req.signal.reason : progress.reason;
}

/**
 * Calls `listener` once when the call ends, however it ends (at once if it has), without making its
 * signal when the transport tracks the call's progress. Not taken back: guard against a late call.
 */
export function whenCallEnds(req: Tracked, listener: (reason: unknown) => void): void {
  const progress = req.contextValues.get(callProgressKey);
  if (progress !== undefined) {
    progress.onAbort(listener);
    return;
  }
  const signal = req.signal;
  if (signal.aborted) listener(signal.reason);
  else signal.addEventListener("abort", () => listener(signal.reason), { once: true });
}

/** What a call that ended for `reason` fails with, as connect makes it of a signal's reason. */
export function abortError(reason: unknown): ConnectError {
  return reason === undefined
    ? new ConnectError("the call ended", Code.Canceled)
    : ConnectError.from(reason);
}
