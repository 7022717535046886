import { ConnectError } from "@connectrpc/connect";
import { storeErrorToConnect } from "./errors.ts";

const maxReportedErrors = 1000;

/**
 * Applies each message of a client stream on its own: what succeeds counts, what fails with a
 * known error (a ConnectError or a store error) is reported as `<label>: <reason>` and the rest
 * goes on. Unexpected errors end the call. At most 1000 failures are listed, then a count.
 */
export async function applyEach<T>(
  messages: AsyncIterable<T>,
  label: (message: T, n: number) => string,
  apply: (message: T) => Promise<void>,
): Promise<{ applied: number; errors: string[] }> {
  let n = 0;
  let applied = 0;
  let unreported = 0;
  const errors: string[] = [];
  for await (const message of messages) {
    n++;
    try {
      await apply(message);
      applied++;
    } catch (err) {
      const known = err instanceof ConnectError ? err : storeErrorToConnect(err);
      if (known === undefined) throw err;
      if (errors.length < maxReportedErrors)
        errors.push(`${label(message, n)}: ${known.rawMessage}`);
      else unreported++;
    }
  }
  if (unreported > 0) errors.push(`... and ${unreported} more failed`);
  return { applied, errors };
}
