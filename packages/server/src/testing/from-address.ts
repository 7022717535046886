import http from "node:http";
import http2 from "node:http2";
import { connect } from "node:net";
import { type Client, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { UserService } from "@keel/gen/user/v1/user_pb";

// Clients that connect from a chosen loopback address (any of 127.0.0.0/8 on Linux), so that one
// test process can be many clients as a server or a proxy sees them.

/** HTTP/2 session options that connect from `localAddress`. */
export function connectingFrom(localAddress: string): http2.ClientSessionOptions {
  return {
    createConnection: (authority: URL) =>
      connect({ host: authority.hostname, port: Number(authority.port), localAddress }),
  };
}

/** A UserService client over HTTP/2 and `protocol`, connecting from `localAddress`. */
export function userClientFrom(
  baseUrl: string,
  localAddress: string,
  protocol: "grpc" | "connect" | "grpc-web" = "grpc",
): Client<typeof UserService> {
  const nodeOptions = connectingFrom(localAddress);
  const transport =
    protocol === "grpc"
      ? createGrpcTransport({ baseUrl, nodeOptions })
      : protocol === "connect"
        ? createConnectTransport({ baseUrl, httpVersion: "2", nodeOptions })
        : createGrpcWebTransport({ baseUrl, httpVersion: "2", nodeOptions });
  return createClient(UserService, transport);
}

export interface RestRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
  localAddress: string;
  httpVersion: "1.1" | "2";
}

/** A REST call from `localAddress` over HTTP/1.1 or HTTP/2: its status and body text. */
export async function restFrom(
  baseUrl: string,
  request: RestRequest,
): Promise<{ status: number; body: string }> {
  const body = request.body === undefined ? undefined : JSON.stringify(request.body);
  const headers = {
    ...(body === undefined ? {} : { "content-type": "application/json" }),
    ...request.headers,
  };
  if (request.httpVersion === "1.1") {
    const url = new URL(request.path, baseUrl);
    return new Promise((resolve, reject) => {
      const req = http.request(
        url,
        { method: request.method, headers, localAddress: request.localAddress },
        (res) => {
          let text = "";
          res.setEncoding("utf8").on("data", (chunk: string) => {
            text += chunk;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on("error", reject).end(body);
    });
  }
  const session = http2.connect(baseUrl, connectingFrom(request.localAddress));
  try {
    return await new Promise((resolve, reject) => {
      session.on("error", reject);
      const req = session.request({ ":method": request.method, ":path": request.path, ...headers });
      let status = 0;
      let text = "";
      req.on("response", (h) => {
        status = Number(h[":status"]);
      });
      req.setEncoding("utf8").on("data", (chunk: string) => {
        text += chunk;
      });
      req.on("end", () => resolve({ status, body: text })).on("error", reject);
      req.end(body);
    });
  } finally {
    session.close();
  }
}
