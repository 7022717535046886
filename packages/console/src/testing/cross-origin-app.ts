// The web app of the cross-origin test (console.test.ts bundles it with esbuild): a page on another
// origin that calls UserService.GetUser with connect-web, over Connect or gRPC-Web.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { UserService } from "@keel/gen/user/v1/user_pb";

export interface GetUserCall {
  baseUrl: string;
  protocol: "connect" | "grpc-web";
  userId: string;
  token?: string;
  /** Sent as `x-api-key` (a header the preflight must allow). */
  apiKey?: string;
}

export interface GetUserOutcome {
  /** The user's name, or null when the call failed. */
  username: string | null;
  /** "OK" or the code's name ("Unauthenticated", …). */
  code: string;
  message: string;
  /** The `x-request-id` response header: only readable when CORS exposes it. */
  requestId: string | null;
}

/** What the page adds to its global object, for the test to call. */
export interface CrossOriginApp {
  keelGetUser(call: GetUserCall): Promise<GetUserOutcome>;
}

async function keelGetUser(call: GetUserCall): Promise<GetUserOutcome> {
  const transport =
    call.protocol === "connect"
      ? createConnectTransport({ baseUrl: call.baseUrl })
      : createGrpcWebTransport({ baseUrl: call.baseUrl });
  const client = createClient(UserService, transport);
  let requestId: string | null = null;
  try {
    const res = await client.getUser(
      { userId: BigInt(call.userId) },
      {
        headers: {
          ...(call.token ? { authorization: `Bearer ${call.token}` } : {}),
          ...(call.apiKey ? { "x-api-key": call.apiKey } : {}),
        },
        onHeader: (header) => {
          requestId = header.get("x-request-id");
        },
      },
    );
    return { username: res.user?.username ?? "", code: "OK", message: "", requestId };
  } catch (err) {
    const error = ConnectError.from(err);
    return {
      username: null,
      code: Code[error.code] ?? String(error.code),
      message: error.rawMessage,
      requestId: error.metadata.get("x-request-id"),
    };
  }
}

(globalThis as unknown as CrossOriginApp).keelGetUser = keelGetUser;
