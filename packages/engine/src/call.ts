import { Code, ConnectError, createContextKey } from "@connectrpc/connect";
import type { DeadlineQueue, Expiring } from "./deadline-queue.ts";
import type { Linked, LinkedList } from "./linked-list.ts";
import { PlainHeaders } from "./plain-headers.ts";

/**
 * One call in flight: what its handler context holds besides the request, its deadline, and its
 * signal. The signal's AbortController is made only when something reads the signal; until then
 * an abort is only remembered. The signal is aborted when the call completes, fails, is
 * cancelled or times out, as connect's is.
 */
/** What `EngineOptions.onCallStart` is told of a call. */
export interface CallState {
  /** Whether the call has ended: completed, failed, cancelled, timed out, shut down. */
  readonly isAborted: boolean;
  /** Why it ended early; undefined while it runs, or when it completed. */
  readonly reason: unknown;
  /** Whether a deadline is armed on the call: the client's or the method's default. */
  readonly hasDeadline: boolean;
  /** The absolute deadline a default set, when the client set none (ms since the epoch); 0: none. */
  readonly defaultDeadline: number;
  /** Calls `listener` once the call has ended (at once if it has). */
  onAbort(listener: (reason: unknown) => void): void;
}

export class Call implements CallState, Linked, Expiring {
  readonly responseHeader: PlainHeaders;
  readonly responseTrailer: PlainHeaders;
  /** The absolute deadline from the client's timeout (ms since the epoch); 0: none. */
  readonly deadline: number;
  /** Why the request gate refused the call (its body unread); undefined: it did not. */
  refusal: unknown;
  /** The absolute deadline a default set, when the client set none (ms since the epoch); 0: none. */
  readonly defaultDeadline: number = 0;
  private controller: AbortController | undefined;
  private abortReason: unknown;
  private aborted = false;
  private timer: NodeJS.Timeout | undefined;
  /** Told when the call is aborted: none, one, or a list made at the second. */
  private listeners: EndListener | EndListener[] | undefined;
  /** The engine's calls in flight, which this one is in until it ends. */
  private inFlight: LinkedList<Call> | undefined;
  linkPrevious: Linked | null = null;
  linkNext: Linked | null = null;
  /** When the deadline passes (`performance.now()`); 0: none. */
  readonly expiresAt: number = 0;
  /** The calls of its deadline, which this one is in until it ends (see `DeadlineQueue`). */
  private readonly expiry: DeadlineQueue | undefined;
  queuePrevious: Expiring | null = null;
  queueNext: Expiring | null = null;

  readonly protocolName: string;

  /**
   * @param protocolName what `HandlerContext.protocolName` says: "grpc", "grpc-web", "connect".
   * @param timeoutMs the client's timeout, from its headers; undefined: none.
   * @param fallback the calls of the deadline a call whose client sets none gets (see
   *   `EngineOptions`), which this one joins when its client set none.
   * @param clientDeadlines the calls of clients' deadlines, which this one joins when its client
   *   set one (or it gets a timer of its own: see `DeadlineQueue`).
   */
  constructor(
    protocolName: string,
    timeoutMs: number | undefined,
    responseHeader: PlainHeaders = new PlainHeaders(),
    responseTrailer: PlainHeaders = new PlainHeaders(),
    fallback?: DeadlineQueue,
    clientDeadlines?: DeadlineQueue,
  ) {
    this.protocolName = protocolName;
    this.responseHeader = responseHeader;
    this.responseTrailer = responseTrailer;
    if (timeoutMs === undefined) {
      this.deadline = 0;
      if (fallback !== undefined && fallback.ms > 0) {
        this.defaultDeadline = Date.now() + fallback.ms;
        this.expiresAt = performance.now() + fallback.ms;
        this.expiry = fallback;
        fallback.add(this);
      }
    } else {
      this.deadline = Date.now() + timeoutMs;
      // Below a millisecond a timer cannot wait: the deadline has passed ("1n" included).
      if (timeoutMs < 1) {
        this.abort(timedOut());
      } else {
        this.expiresAt = performance.now() + timeoutMs;
        if (clientDeadlines?.add(this) === true) this.expiry = clientDeadlines;
        else this.timer = setTimeout(() => this.abort(timedOut()), timeoutMs);
      }
    }
  }

  /** The call's signal, made on first read. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.abortReason ?? completed);
    }
    return this.controller.signal;
  }

  /** Whether the call was aborted (or completed), without making a signal. */
  get isAborted(): boolean {
    return this.aborted;
  }

  get hasDeadline(): boolean {
    return this.deadline !== 0 || this.defaultDeadline !== 0;
  }

  /** Why the call was aborted; undefined while it runs. */
  get reason(): unknown {
    return this.abortReason;
  }

  /** What the handler's `timeoutMs()` answers: the client's deadline only, as in connect. */
  readonly timeoutMs = (): number | undefined =>
    this.deadline === 0 ? undefined : this.deadline - Date.now();

  /**
   * Ends the call: its signal aborts with `reason`, or, when none is given (the call completed),
   * with an AbortError as connect's does (one made once: a DOMException captures a stack trace,
   * which per call cost 8% of the server's CPU). Only the first call counts.
   */
  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.expiry?.delete(this);
    this.inFlight?.delete(this);
    this.controller?.abort(reason ?? completed);
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners === undefined) return;
    if (!Array.isArray(listeners)) tell(listeners, reason);
    else for (const listener of listeners) tell(listener, reason);
  }

  /** Its deadline passed (see `DeadlineQueue`). */
  expire(reason: unknown): void {
    this.abort(reason);
  }

  /** Counts the call in `calls` until it ends (not at all when it has). */
  trackIn(calls: LinkedList<Call>): void {
    if (this.aborted) return;
    this.inFlight = calls;
    calls.add(this);
  }

  /**
   * Calls `listener` once the call is aborted (at once if it is), without making a signal; an
   * object's `callEnded` (the engine's own parts: no closure per call).
   */
  onAbort(listener: EndListener): void {
    if (this.aborted) tell(listener, this.abortReason);
    else if (this.listeners === undefined) this.listeners = listener;
    else if (!Array.isArray(this.listeners)) this.listeners = [this.listeners, listener];
    // A copy one longer: a push would grow the list's room to 19 (a call has three or four).
    else this.listeners = [...this.listeners, listener];
  }
}

/** What is told that a call ended: a function, or an object of the engine's. */
export type EndListener = ((reason: unknown) => void) | { callEnded(reason: unknown): void };

function tell(listener: EndListener, reason: unknown): void {
  if (typeof listener === "function") listener(reason);
  else listener.callEnded(reason);
}

/** The deadline a method's calls get when their client sets none. */
export interface DefaultDeadline {
  /** In ms; 0: none. */
  ms: number;
  /** What the call's signal aborts with when it passes. */
  error: () => unknown;
}

/** What a call whose client's deadline passed ends with, as connect's. */
export const timedOut = () => new ConnectError("the operation timed out", Code.DeadlineExceeded);

/** The reason a completed call's signal aborts with: connect's AbortError, made once. */
const completed = new DOMException("This operation was aborted", "AbortError");

/** Where the engine keeps a call's state: in the request's context values, not on the request. */
export const callKey = createContextKey<Call | undefined>(undefined, {
  description: "keel engine call",
});
