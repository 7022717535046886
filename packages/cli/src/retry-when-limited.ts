import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { serverRetryDelayMs } from "@keel/clients";

export interface RetryWhenLimitedOptions {
  /**
   * Told once per run, at the first wait: which call waits, and for how long ("CreateUser alan is
   * rate limited for this address; waiting as the server asks (1.5 s, and again if needed)").
   */
  warn: (line: string) => void;
  /**
   * The longest the calls of one run may wait in all, in ms: past it, the refusal is the answer.
   * Default 60000 (sign-ups refill one every 6 s by default).
   */
  budgetMs?: number;
}

/**
 * Runs calls that a server's per-address limits may refuse (RESOURCE_EXHAUSTED with a retry
 * delay, given before any work is done): a refused call is made again after the delay the server
 * names, as long as the waits together stay within the budget. Any other error, a refusal without
 * a delay, or one whose delay does not fit what is left of the budget, is thrown as it came.
 */
export function createRetryWhenLimited(
  options: RetryWhenLimitedOptions,
): <T>(what: string, call: () => Promise<T>) => Promise<T> {
  let left = options.budgetMs ?? 60_000;
  let warned = false;
  return async function retryWhenLimited<T>(what: string, call: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await call();
      } catch (err) {
        const error = ConnectError.from(err);
        const delayMs =
          error.code === Code.ResourceExhausted ? serverRetryDelayMs(error) : undefined;
        if (delayMs === undefined || delayMs < 0 || delayMs > left) throw err;
        left -= delayMs;
        if (!warned) {
          options.warn(
            `${what} is rate limited for this address; waiting as the server asks (${(delayMs / 1000).toFixed(1)} s, and again if needed)`,
          );
          warned = true;
        }
        await sleep(delayMs);
      }
    }
  };
}
