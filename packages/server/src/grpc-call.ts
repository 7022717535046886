import { Code, ConnectError } from "@connectrpc/connect";
import { defaultDeadlineExpired } from "@keel/interceptors";
import { PlainHeaders } from "./plain-headers.ts";

/** One call in flight: what its handler context holds besides the request itself. */
export class Call {
  readonly controller = new AbortController();
  readonly responseHeader = new PlainHeaders();
  readonly responseTrailer = new PlainHeaders();
  done = false;
  /** The absolute deadline of a default (server-set) timeout; 0 when none or the client set one. */
  readonly defaultDeadline: number = 0;
  private timer: NodeJS.Timeout | undefined;
  private deadline = 0;
  private shutdown: AbortSignal | undefined;
  private readonly onShutdown = () => this.controller.abort(this.shutdown?.reason);

  /** With the client's timeout if it set one, or else the method's default (0: none). */
  constructor(timeoutMs: number | undefined, defaultTimeoutMs: number) {
    if (timeoutMs !== undefined) {
      this.deadline = Date.now() + timeoutMs;
      this.arm(timeoutMs, () => new ConnectError("the operation timed out", Code.DeadlineExceeded));
    } else if (defaultTimeoutMs > 0) {
      this.defaultDeadline = Date.now() + defaultTimeoutMs;
      this.arm(defaultTimeoutMs, () => defaultDeadlineExpired(defaultTimeoutMs));
    }
  }

  /** What the handler's `timeoutMs()` answers: the client's deadline only, as in connect. */
  readonly timeoutMs = (): number | undefined =>
    this.deadline === 0 ? undefined : this.deadline - Date.now();

  private arm(ms: number, error: () => ConnectError): void {
    const expire = () => this.controller.abort(error());
    if (ms <= 0) expire();
    else this.timer = setTimeout(expire, ms);
  }

  /** Aborts the handler's signal when `signal` aborts, until the call finishes. */
  link(signal: AbortSignal): void {
    if (signal.aborted) {
      this.controller.abort(signal.reason);
      return;
    }
    this.shutdown = signal;
    signal.addEventListener("abort", this.onShutdown, { once: true });
  }

  /** The client went away before the answer: abort the handler's signal. */
  cancel(): void {
    if (!this.done) {
      this.controller.abort(new ConnectError("the client cancelled the call", Code.Canceled));
    }
  }

  finish(): void {
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.shutdown?.removeEventListener("abort", this.onShutdown);
  }
}
