import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import { createEngine } from "@keel/engine";
import { UserService } from "@keel/gen/user/v1/user_pb";
import { createRestHandler } from "./rest-handler.ts";
import { accessToken, startRestServer } from "./testing/rest-server.ts";
import { sendBody } from "./testing/send-body.ts";

interface Reply {
  status: number;
  header: Headers;
  text: string;
}

interface Request {
  method?: string;
  header?: Record<string, string>;
  body?: unknown;
}

type Version = "HTTP/1.1" | "HTTP/2" | "HTTP/2, raw streams";

/** Makes requests over one HTTP version: fetch for HTTP/1.1, a node:http2 session for HTTP/2. */
function client(version: Version, baseUrl: string) {
  let session: http2.ClientHttp2Session | undefined;
  const headersOf = ({ header = {}, body }: Request) => ({
    ...(body === undefined ? {} : { "content-type": "application/json" }),
    ...header,
  });
  const bodyOf = ({ body }: Request) =>
    body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  const h2 = (path: string, request: Request): http2.ClientHttp2Stream => {
    session ??= http2.connect(baseUrl);
    const stream = session.request({
      ":method": request.method ?? "GET",
      ":path": path,
      ...headersOf(request),
    });
    stream.end(bodyOf(request));
    return stream;
  };
  return {
    async send(path: string, request: Request = {}): Promise<Reply> {
      if (version === "HTTP/1.1") {
        const res = await fetch(baseUrl + path, {
          method: request.method ?? "GET",
          headers: headersOf(request),
          ...(request.body === undefined ? {} : { body: bodyOf(request) }),
        });
        return { status: res.status, header: res.headers, text: await res.text() };
      }
      const stream = h2(path, request);
      const [head] = (await new Promise((resolve, reject) => {
        stream.once("response", (h) => resolve([h]));
        stream.once("error", reject);
        // Reset without an answer: fail now rather than wait for the test's timeout.
        stream.once("close", () => reject(new Error(`${path}: the stream closed unanswered`)));
      })) as [http2.IncomingHttpHeaders];
      const header = new Headers();
      for (const [name, value] of Object.entries(head)) {
        if (!name.startsWith(":") && value !== undefined) header.set(name, String(value));
      }
      let text = "";
      for await (const chunk of stream) text += String(chunk);
      return { status: Number(head[":status"]), header, text };
    },
    /** Reads the first chunk of a response, then goes away. */
    async firstChunkThenLeave(path: string, request: Request): Promise<string> {
      if (version === "HTTP/1.1") {
        const abort = new AbortController();
        const res = await fetch(baseUrl + path, {
          headers: headersOf(request),
          signal: abort.signal,
        });
        const reader = res.body?.getReader();
        const first = await reader?.read();
        abort.abort();
        return new TextDecoder().decode(first?.value);
      }
      const stream = h2(path, request);
      const [chunk] = (await new Promise((resolve) =>
        stream.once("data", (c) => resolve([c])),
      )) as [Buffer];
      stream.close(http2.constants.NGHTTP2_CANCEL);
      return String(chunk);
    },
    close: () => session?.close(),
  };
}

describe("createRestHandler", () => {
  let server: Awaited<ReturnType<typeof startRestServer>>;
  before(async () => {
    server = await startRestServer();
  });
  after(() => server.close());
  const auth = { authorization: `Bearer ${accessToken("7", ["admin"])}` };

  for (const version of ["HTTP/1.1", "HTTP/2", "HTTP/2, raw streams"] as const) {
    describe(version, () => {
      let c: ReturnType<typeof client>;
      before(() => {
        c = client(
          version,
          version === "HTTP/1.1"
            ? server.h1Url
            : version === "HTTP/2"
              ? server.h2Url
              : server.h2RawUrl,
        );
      });
      after(() => c.close());

      it("answers GET with response_body in proto3 JSON, through the interceptors", async () => {
        const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        const res = await c.send("/api/v1/users/7?fields=username&fields=email", {
          header: { ...auth, "x-request-id": "req-1", traceparent, baggage: "k=v" },
        });
        assert.equal(res.status, 200, res.text);
        assert.match(res.header.get("content-type") ?? "", /^application\/json/);
        assert.equal(res.header.get("x-request-id"), "req-1");
        assert.deepEqual(JSON.parse(res.text), {
          userId: "7",
          username: "ada",
          email: "ada@example.com",
          status: "USER_STATUS_ACTIVE",
          createdAt: "2024-01-02T03:04:05Z",
          tags: ["admin"],
          metadata: { team: "core" },
        });
        const call = server.seen.at(-1);
        assert.equal(call?.procedure, "user.v1.UserService/GetUser");
        assert.equal(call?.subject, "7");
        assert.equal(call?.peer, "127.0.0.1");
        assert.equal(call?.header.get("traceparent"), traceparent);
        assert.equal(call?.header.get("baggage"), "k=v");
        assert.deepEqual((call?.message as { fields?: string[] } | undefined)?.fields, [
          "username",
          "email",
        ]);
      });

      it("ends the call when it answers: the handler's signal aborts", async () => {
        const res = await c.send("/api/v1/users/7", { header: auth });
        assert.equal(res.status, 200);
        const ctx = server.seen.at(-1)?.ctx;
        assert.equal(ctx?.protocolName, "rest");
        assert.equal(ctx?.requestMethod, "GET");
        assert.match(ctx?.url ?? "", /^http:\/\/127\.0\.0\.1:\d+\/api\/v1\/users\/7$/);
        assert.equal(ctx?.signal.aborted, true);
      });

      it("hands on a deadline from grpc-timeout or x-server-timeout", async () => {
        const timeouts: Record<string, string>[] = [
          { "grpc-timeout": "5S" },
          { "x-server-timeout": "5" },
        ];
        for (const header of timeouts) {
          const res = await c.send("/api/v1/users/7", { header: { ...auth, ...header } });
          assert.equal(res.status, 200);
          const timeoutMs = server.seen.at(-1)?.ctx?.timeoutMs() ?? 0;
          assert.ok(timeoutMs > 4000 && timeoutMs <= 5000, String(timeoutMs));
        }
      });

      it("maps errors to HTTP statuses with a JSON error body", async () => {
        const notFound = await c.send("/api/v1/users/404", { header: auth });
        assert.equal(notFound.status, 404);
        assert.deepEqual(JSON.parse(notFound.text), {
          error: { code: 404, status: "NOT_FOUND", message: "user 404 not found", details: [] },
        });
        const limited = await c.send("/api/v1/users/429", { header: auth });
        assert.equal(limited.status, 429);
        assert.equal(limited.header.get("retry-after"), "3");
        assert.equal(JSON.parse(limited.text).error.status, "RESOURCE_EXHAUSTED");
      });

      it("refuses calls without a token with 401, before the handler", async () => {
        const before = server.seen.length;
        const res = await c.send("/api/v1/users/7");
        assert.equal(res.status, 401);
        const { error } = JSON.parse(res.text);
        assert.equal(error.status, "UNAUTHENTICATED");
        assert.match(error.message, /missing access token/);
        assert.equal(server.seen.length, before);
      });

      it('takes body "*" for POST, public methods answering without a token', async () => {
        const body = { username: "grace", email: "grace@example.com", password: "long enough" };
        const res = await c.send("/api/v1/users", { method: "POST", body });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(JSON.parse(res.text), {
          user: { userId: "1", username: "grace", email: "grace@example.com" },
        });
        const taken = await c.send("/api/v1/users", {
          method: "POST",
          body: { ...body, username: "taken" },
        });
        assert.equal(taken.status, 409);
        assert.equal(JSON.parse(taken.text).error.status, "ALREADY_EXISTS");
      });

      it("refuses bad bodies and queries with 400 and 415, naming the problem", async () => {
        const unknown = await c.send("/api/v1/users", { method: "POST", body: { nmae: "x" } });
        assert.equal(unknown.status, 400);
        assert.match(JSON.parse(unknown.text).error.message, /key "nmae" is unknown/);
        const broken = await c.send("/api/v1/users", { method: "POST", body: "{" });
        assert.equal(broken.status, 400);
        assert.match(JSON.parse(broken.text).error.message, /not valid JSON/);
        const text = await c.send("/api/v1/users", {
          method: "POST",
          header: { "content-type": "text/plain" },
          body: "{}",
        });
        assert.equal(text.status, 415);
        const query = await c.send("/api/v1/users?page_size=many", { header: auth });
        assert.equal(query.status, 400);
        const { error } = JSON.parse(query.text);
        assert.equal(error.status, "INVALID_ARGUMENT");
        assert.deepEqual(error.details, [
          {
            "@type": "type.googleapis.com/errdetails.v1.BadRequest",
            fieldViolations: [
              {
                field: "page_size",
                description: 'expected an integer from -2147483648 to 2147483647, got "many"',
              },
            ],
          },
        ]);
      });

      it("takes the other fields from the query, enums by name", async () => {
        const res = await c.send("/api/v1/users?pageSize=2&status=USER_STATUS_SUSPENDED", {
          header: auth,
        });
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(JSON.parse(res.text), {
          users: [
            { userId: "1", status: "USER_STATUS_SUSPENDED" },
            { userId: "2", status: "USER_STATUS_SUSPENDED" },
          ],
          nextPageToken: "next",
        });
      });

      it("sends server streams as NDJSON, one message per line", async () => {
        const res = await c.send("/api/v1/users/7/activities", { header: auth });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.header.get("content-type"), "application/x-ndjson");
        const lines = res.text
          .trimEnd()
          .split("\n")
          .map((line) => JSON.parse(line));
        assert.deepEqual(
          lines.map((l) => [l.activityId, l.userId, l.timestamp]),
          [
            ["1", "7", "2024-01-02T03:04:05Z"],
            ["2", "7", "2024-01-02T03:04:05Z"],
            ["3", "7", "2024-01-02T03:04:05Z"],
          ],
        );
        assert.equal(server.seen.at(-1)?.stream, true);
      });

      it("ends a stream that fails with an error line", async () => {
        const res = await c.send("/api/v1/users/13/activities", { header: auth });
        assert.equal(res.status, 200);
        const lines = res.text
          .trimEnd()
          .split("\n")
          .map((line) => JSON.parse(line));
        assert.equal(lines.length, 3);
        assert.deepEqual(lines[2], {
          error: { code: 503, status: "UNAVAILABLE", message: "store went away", details: [] },
        });
      });

      it("answers a stream that fails before its first message with the error's status", async () => {
        const res = await c.send("/api/v1/users/403/activities", { header: auth });
        assert.equal(res.status, 403);
        assert.match(res.header.get("content-type") ?? "", /^application\/json/);
        assert.equal(JSON.parse(res.text).error.status, "PERMISSION_DENIED");
        const anonymous = await c.send("/api/v1/users/7/activities");
        assert.equal(anonymous.status, 401);
      });

      it("answers HEAD with the headers a GET's error would have, and no body", async () => {
        const head = await c.send("/api/v1/users/7", { method: "HEAD", header: auth });
        assert.equal(head.status, 405);
        assert.equal(head.header.get("allow"), "GET");
        assert.match(head.header.get("content-type") ?? "", /^application\/json/);
        assert.equal(head.text, "");
      });

      it("refuses a body larger than the limit with 413, saying the limit", async () => {
        const res = await c.send("/api/v1/users", {
          method: "POST",
          header: auth,
          body: JSON.stringify({ username: "x".repeat(5 * 1024 * 1024) }),
        });
        assert.equal(res.status, 413, res.text);
        assert.match(JSON.parse(res.text).error.message, /larger than 4194304 bytes/);
      });

      it("answers unknown routes with a JSON 404 and wrong methods with 405", async () => {
        for (const path of ["/api/v1/nope", "/api/v1/users/7/nope", "/elsewhere"]) {
          const res = await c.send(path);
          assert.equal(res.status, 404, path);
          assert.deepEqual(JSON.parse(res.text).error, {
            code: 404,
            status: "NOT_FOUND",
            message: `no route for GET "${path}"`,
            details: [],
          });
        }
        const wrong = await c.send("/api/v1/users/7", { method: "DELETE", header: auth });
        assert.equal(wrong.status, 405);
        assert.equal(wrong.header.get("allow"), "GET");
        assert.equal(JSON.parse(wrong.text).error.code, 405);
        const put = await c.send("/api/v1/users", { method: "PUT" });
        assert.equal(put.status, 405);
        assert.equal(put.header.get("allow"), "POST, GET");
      });

      it("serves /openapi.json, and Connect on the same port", async () => {
        const doc = await c.send("/openapi.json");
        assert.equal(doc.status, 200);
        assert.equal(JSON.parse(doc.text).openapi, "3.0.3");
        const connect = await c.send("/user.v1.UserService/GetUser", {
          method: "POST",
          header: auth,
          body: { userId: "7" },
        });
        assert.equal(connect.status, 200);
        assert.equal(JSON.parse(connect.text).user.username, "ada");
      });
    });
  }

  it("starts the deadline at the headers: it covers reading the body", async () => {
    // Half a body, and the rest never.
    const answer = await sendBody(
      server.h1Url,
      {
        method: "POST",
        path: "/api/v1/users",
        headers: { "content-type": "application/json", "grpc-timeout": "100m" },
      },
      '{"username": "slow"',
      false,
    );
    assert.equal(answer.status, 504, answer.text);
    assert.equal(JSON.parse(answer.text).error.status, "DEADLINE_EXCEEDED");
  });

  it("ends a HEAD answer on raw HTTP/2 streams with its headers, as the compatibility layer does", async () => {
    for (const url of [server.h2Url, server.h2RawUrl]) {
      const session = http2.connect(url);
      try {
        const stream = session.request({ ":method": "HEAD", ":path": "/api/v1/users/7", ...auth });
        stream.end();
        const [headers, flags] = (await new Promise((resolve) =>
          stream.once("response", (h, f) => resolve([h, f])),
        )) as [http2.IncomingHttpHeaders, number];
        assert.equal(headers[":status"], 405, url);
        assert.equal(flags & http2.constants.NGHTTP2_FLAG_END_STREAM, 1, url);
      } finally {
        session.close();
      }
    }
  });

  it("cancels a stream when the client goes away", async () => {
    let left = 0;
    for (const [version, url] of [
      ["HTTP/1.1", server.h1Url],
      ["HTTP/2", server.h2Url],
      ["HTTP/2, raw streams", server.h2RawUrl],
    ] as const) {
      const c = client(version, url);
      const first = await c.firstChunkThenLeave("/api/v1/users/99/activities", { header: auth });
      assert.equal(JSON.parse(first).activityId, "1");
      // This client's stream, not an earlier one's.
      await server.aborted(++left);
      c.close();
    }
  });
});

describe("RestHandler.matches and routes", () => {
  const engine = createEngine({ routes: (router) => router.service(UserService, {}) });
  const rest = createRestHandler({ engine, services: [UserService] });

  it("claims /openapi.json and paths under the routes' first segment", () => {
    assert.ok(rest.matches("/openapi.json"));
    assert.ok(rest.matches("/api/v1/users/7?fields=x"));
    assert.ok(rest.matches("/api/anything"));
    assert.ok(!rest.matches("/user.v1.UserService/GetUser"));
    assert.ok(!rest.matches("/apix"));
  });

  it("lists its routes, most specific first", () => {
    assert.deepEqual(
      rest.routes.map((r) => `${r.method} ${r.path} ${r.procedure.split("/")[1]}`),
      [
        "POST /api/v1/auth/login Login",
        "POST /api/v1/auth/refresh RefreshToken",
        "GET /api/v1/users/{user_id}/activities StreamUserActivities",
        "GET /api/v1/users/{user_id} GetUser",
        "DELETE /api/v1/api-keys/{key_id} RevokeApiKey",
        "POST /api/v1/users CreateUser",
        "GET /api/v1/users ListUsers",
        "POST /api/v1/api-keys CreateApiKey",
        "GET /api/v1/api-keys ListApiKeys",
      ],
    );
  });

  it("needs a handler for every service it serves", () => {
    assert.throws(
      () =>
        createRestHandler({ engine: createEngine({ routes: () => {} }), services: [UserService] }),
      /no handler for user.v1.UserService\/\w+: register its service on the router/,
    );
  });
});
