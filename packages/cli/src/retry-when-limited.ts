import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { serverRetryDelayMs } from "@keel/clients";

export interface RetryWhenLimitedOptions {
  /**
   * The longest the calls of one run may wait in all, in ms: past it, the refusal is the answer.
   * Default 60000 (sign-ups refill one every 6 s by default).
   */
  budgetMs?: number;
  /** Told once per wait, before it: the delay in ms and the server's message. */
  onWait?: (delayMs: number, error: ConnectError) => void;
}

/**
 * Runs calls that a server's rate limit may refuse (RESOURCE_EXHAUSTED with a retry delay, before
 * any work is done): a refused call is made again after the delay the server names, as long as
 * the waits together stay within the budget. Any other error, a refusal without a delay, or one
 * whose delay does not fit what is left of the budget, is thrown as it came.
 */
export function createRetryWhenLimited(
  options: RetryWhenLimitedOptions = {},
): <T>(call: () => Promise<T>) => Promise<T> {
  let left = options.budgetMs ?? 60_000;
  return async function retryWhenLimited<T>(call: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await call();
      } catch (err) {
        const error = ConnectError.from(err);
        const delayMs =
          error.code === Code.ResourceExhausted ? serverRetryDelayMs(error) : undefined;
        if (delayMs === undefined || delayMs < 0 || delayMs > left) throw err;
        left -= delayMs;
        options.onWait?.(delayMs, error);
        await sleep(delayMs);
      }
    }
  };
}
