import { ConnectError } from "@connectrpc/connect";

/**
 * An error as the user should read it, `[permission_denied] …`: never a stack. A TLS failure
 * says which flag gives what the server wants.
 */
export function describeError(err: unknown): string {
  const { message } = ConnectError.from(err);
  if (/self[- ]signed certificate|unable to verify|unable to get (local )?issuer/i.test(message)) {
    return `${message} (give the CA that signed the server's certificate with --ca or KEEL_TLS_CA)`;
  }
  if (/certificate required|alert number 116/i.test(message)) {
    return `${message} (the server wants a client certificate: --cert and --key, or KEEL_TLS_CLIENT_CERT and KEEL_TLS_CLIENT_KEY)`;
  }
  return message;
}
