import { ConnectError } from "@connectrpc/connect";

/** An error as the user should read it, `[permission_denied] …`: never a stack. */
export function describeError(err: unknown): string {
  return ConnectError.from(err).message;
}
