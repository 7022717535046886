import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { pino } from "pino";
import { principalKey } from "./context.ts";
import { type CallLogger, createLoggingInterceptor, type LogLevel } from "./logging.ts";
import { createRefusalSummary, type RefusalCounts } from "./refusal-summary.ts";
import { createRequestIdInterceptor } from "./request-id.ts";
import { messages, type Protocol, protocols, startTestService } from "./testing/test-service.ts";

interface Line {
  level: LogLevel;
  fields: Record<string, unknown>;
  message: string;
}

/** A logger that keeps what it is given; `enabled` decides what isLevelEnabled answers. */
function captureLogger(enabled: (level: LogLevel) => boolean = () => true) {
  const lines: Line[] = [];
  const asked: LogLevel[] = [];
  const write = (level: LogLevel) => (fields: object, message: string) => {
    lines.push({ level, fields: { ...fields }, message });
  };
  const logger: CallLogger = {
    debug: write("debug"),
    info: write("info"),
    warn: write("warn"),
    error: write("error"),
    isLevelEnabled: (level) => {
      asked.push(level);
      return enabled(level);
    },
  };
  return { logger, lines, asked };
}

/** Stands in for authentication: the subject comes from a test header. */
const fakeAuthentication: Interceptor = (next) => (req) => {
  const subject = req.header.get("x-test-subject");
  if (subject !== null) {
    req.contextValues.set(principalKey, {
      subject,
      userId: BigInt(subject),
      roles: [],
      tokenId: undefined,
    });
  }
  return next(req);
};

/** Waits until the logger has `count` lines, then returns the last, with `duration_ms` checked. */
async function lineNumber(lines: Line[], count: number): Promise<Line> {
  for (let i = 0; i < 400 && lines.length < count; i++) await sleep(5);
  assert.equal(lines.length, count, "the number of lines logged");
  const line = lines[count - 1] as Line;
  const { duration_ms, ...rest } = line.fields;
  assert.equal(typeof duration_ms, "number");
  assert.ok((duration_ms as number) >= 0 && (duration_ms as number) < 10_000, "duration_ms");
  return { ...line, fields: rest };
}

const expectedProtocol: Record<Protocol, string> = {
  grpc: "grpc",
  "grpc-web": "grpc-web",
  connect: "connect",
};

/** A service with failures and a server stream that waits for the client to go away. */
async function startLoggedService(interceptor: Interceptor) {
  return startTestService([interceptor, createRequestIdInterceptor(), fakeAuthentication], {
    getUser(req) {
      if (req.userId === 13n) throw new Error("unlucky: postgres://admin:hunter2@db");
      if (req.userId === 404n) throw new ConnectError("user 404 not found", Code.NotFound);
      if (req.userId === 503n) throw new ConnectError("database unavailable", Code.Unavailable);
      if (req.userId === 429n) throw new ConnectError("rate limit", Code.ResourceExhausted);
      return { user: { userId: req.userId, username: `user${req.userId}` } };
    },
    async *streamUserActivities(req, ctx) {
      yield { activityId: 1n, userId: req.userId, action: "user.login" };
      if (req.userId === 10n) throw new ConnectError("activity log rotated", Code.Aborted);
      if (req.userId === 99n) {
        // Runs until the client cancels.
        await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
        return;
      }
      if (req.userId === 98n) {
        // Sends until connect stops it: it throws the failed write into the stream.
        for (let i = 2n; ; i++) {
          await new Promise(setImmediate); // lets the server read the client's cancellation
          yield { activityId: i, userId: req.userId, action: "a" };
        }
      }
      for (let i = 2n; i <= 3n; i++) yield { activityId: i, userId: req.userId, action: "a" };
    },
  });
}

describe("logging interceptor", () => {
  const { logger, lines } = captureLogger();
  let svc: Awaited<ReturnType<typeof startLoggedService>>;
  before(async () => {
    svc = await startLoggedService(createLoggingInterceptor({ logger }));
  });
  after(() => svc.close());

  for (const protocol of protocols) {
    const common = (requestId: string) => ({
      protocol: expectedProtocol[protocol],
      peer: "127.0.0.1",
      request_id: requestId,
      user_id: "42",
    });
    const headers = (requestId: string) => ({
      "x-request-id": requestId,
      "x-test-subject": "42",
    });

    it(`${protocol}: logs an OK unary call at debug`, async () => {
      const client = svc.client(protocol);
      await client.getUser({ userId: 1n }, { headers: headers(`${protocol}-ok`) });
      assert.deepEqual(await lineNumber(lines, lines.length), {
        level: "debug",
        message: "finished call",
        fields: {
          method: "user.v1.UserService/GetUser",
          grpc_type: "unary",
          code: "OK",
          ...common(`${protocol}-ok`),
        },
      });
    });

    it(`${protocol}: logs a failed unary call with its code and message`, async () => {
      const client = svc.client(protocol);
      const options = { headers: headers(`${protocol}-404`) };
      await assert.rejects(client.getUser({ userId: 404n }, options), /not found/);
      assert.deepEqual(await lineNumber(lines, lines.length), {
        level: "info",
        message: "finished call",
        fields: {
          method: "user.v1.UserService/GetUser",
          grpc_type: "unary",
          code: "NotFound",
          error: "user 404 not found",
          ...common(`${protocol}-404`),
        },
      });
      const count = lines.length;
      await assert.rejects(client.getUser({ userId: 503n }), /unavailable/);
      const line = await lineNumber(lines, count + 1);
      assert.equal(line.level, "warn");
      assert.equal(line.fields.code, "Unavailable");
      assert.equal(line.fields.error, "database unavailable");
    });

    it(`${protocol}: logs an unexpected error as the INTERNAL the client got`, async () => {
      const count = lines.length;
      await assert.rejects(svc.client(protocol).getUser({ userId: 13n }), (err: unknown) => {
        return err instanceof ConnectError && err.code === Code.Internal;
      });
      const line = await lineNumber(lines, count + 1);
      assert.equal(line.level, "error");
      assert.equal(line.fields.code, "Internal");
      assert.equal(line.fields.error, "internal error");
    });

    it(`${protocol}: logs a server stream with its message counts`, async () => {
      const count = lines.length;
      const options = { headers: headers(`${protocol}-ss`) };
      for await (const _ of svc.client(protocol).streamUserActivities({ userId: 1n }, options));
      assert.deepEqual(await lineNumber(lines, count + 1), {
        level: "debug",
        message: "finished call",
        fields: {
          method: "user.v1.UserService/StreamUserActivities",
          grpc_type: "server_stream",
          code: "OK",
          msgs_received: 1,
          msgs_sent: 3,
          ...common(`${protocol}-ss`),
        },
      });
    });

    it(`${protocol}: logs a client stream with its message counts`, async () => {
      const count = lines.length;
      const updates = messages([{ userId: 1n }, { userId: 2n }, { userId: 3n }]);
      const res = await svc.client(protocol).batchUpdateUsers(updates, {
        headers: headers(`${protocol}-cs`),
      });
      assert.equal(res.updatedCount, 3);
      assert.deepEqual(await lineNumber(lines, count + 1), {
        level: "debug",
        message: "finished call",
        fields: {
          method: "user.v1.UserService/BatchUpdateUsers",
          grpc_type: "client_stream",
          code: "OK",
          msgs_received: 3,
          msgs_sent: 1,
          ...common(`${protocol}-cs`),
        },
      });
    });

    it(`${protocol}: logs a bidi stream with its message counts`, async () => {
      const count = lines.length;
      const options = { headers: headers(`${protocol}-bidi`) };
      const updates = messages([{ userId: 1n }, { userId: 2n }]);
      for await (const _ of svc.client(protocol).syncUserStatus(updates, options));
      assert.deepEqual(await lineNumber(lines, count + 1), {
        level: "debug",
        message: "finished call",
        fields: {
          method: "user.v1.UserService/SyncUserStatus",
          grpc_type: "bidi_stream",
          code: "OK",
          msgs_received: 2,
          msgs_sent: 2,
          ...common(`${protocol}-bidi`),
        },
      });
    });

    it(`${protocol}: logs a stream that fails after a message`, async () => {
      const count = lines.length;
      const call = async () => {
        for await (const _ of svc.client(protocol).streamUserActivities({ userId: 10n }));
      };
      await assert.rejects(call(), /activity log rotated/);
      const line = await lineNumber(lines, count + 1);
      assert.equal(line.level, "info");
      assert.equal(line.fields.code, "Aborted");
      assert.equal(line.fields.error, "activity log rotated");
      assert.equal(line.fields.msgs_received, 1);
      assert.equal(line.fields.msgs_sent, 1);
    });

    it(`${protocol}: logs a stream the client cancelled, once it ends`, async () => {
      const count = lines.length;
      const abort = new AbortController();
      const call = async () => {
        const stream = svc
          .client(protocol)
          .streamUserActivities(
            { userId: 99n },
            { signal: abort.signal, headers: headers(`${protocol}-cancel`) },
          );
        for await (const _ of stream) abort.abort();
      };
      await assert.rejects(call(), (err: unknown) => {
        return err instanceof ConnectError && err.code === Code.Canceled;
      });
      const line = await lineNumber(lines, count + 1);
      assert.equal(line.level, "info");
      assert.equal(line.fields.code, "Canceled");
      assert.equal(line.fields.msgs_received, 1);
      assert.equal(line.fields.msgs_sent, 1);
      assert.equal(line.fields.request_id, `${protocol}-cancel`);
      assert.equal(line.fields.error, "http/2 stream closed with error code CANCEL (0x8)");
    });

    it(`${protocol}: logs a stream that was still sending when the client cancelled`, async () => {
      const count = lines.length;
      const abort = new AbortController();
      const call = async () => {
        const stream = svc
          .client(protocol)
          .streamUserActivities({ userId: 98n }, { signal: abort.signal });
        for await (const _ of stream) abort.abort();
      };
      await assert.rejects(call(), (err: unknown) => {
        return err instanceof ConnectError && err.code === Code.Canceled;
      });
      const line = await lineNumber(lines, count + 1);
      assert.equal(line.level, "info");
      assert.equal(line.fields.code, "Canceled");
      assert.ok((line.fields.msgs_sent as number) >= 1, "msgs_sent");
    });
  }

  it("never logs headers, messages, tokens or the text of unexpected errors", async () => {
    const client = svc.client("connect");
    const count = lines.length;
    const headers = { authorization: "Bearer sekrit-token-123", cookie: "session=sekrit-cookie" };
    await client.getUser({ userId: 1n }, { headers });
    await client.createUser({ username: "ann", password: "hunter2-password" }, { headers });
    await client.login({ username: "ann", password: "hunter2-password" }, { headers });
    await assert.rejects(client.getUser({ userId: 13n }, { headers }));
    await lineNumber(lines, count + 4);
    const logged = JSON.stringify(lines, (_, value) =>
      typeof value === "bigint" ? value.toString() : value,
    );
    for (const secret of ["sekrit", "hunter2", "Bearer", "ann", "postgres"]) {
      assert.ok(!logged.includes(secret), `${secret} appears in the log`);
    }
  });
});

describe("logging interceptor without other interceptors", () => {
  it("leaves out request_id and user_id when nothing set them", async () => {
    const { logger, lines } = captureLogger();
    const svc = await startTestService([createLoggingInterceptor({ logger })]);
    try {
      await svc.client("grpc").getUser({ userId: 1n });
      const line = await lineNumber(lines, 1);
      assert.deepEqual(line.fields, {
        method: "user.v1.UserService/GetUser",
        protocol: "grpc",
        grpc_type: "unary",
        code: "OK",
        peer: "127.0.0.1",
      });
    } finally {
      await svc.close();
    }
  });
});

describe("logging interceptor levels", () => {
  it("takes the level of each code from levelFor, asking once per code", async () => {
    const { logger, lines } = captureLogger();
    const asked: string[] = [];
    const svc = await startLoggedService(
      createLoggingInterceptor({
        logger,
        levelFor: (code) => {
          asked.push(code);
          return code === "OK" ? "info" : code === "NotFound" ? "error" : "debug";
        },
      }),
    );
    try {
      assert.equal(asked.length, 17, "every code from OK to Unauthenticated");
      assert.deepEqual(asked.slice(0, 3), ["OK", "Canceled", "Unknown"]);
      assert.equal(asked[16], "Unauthenticated");
      const client = svc.client("grpc");
      await client.getUser({ userId: 1n });
      await assert.rejects(client.getUser({ userId: 404n }));
      await assert.rejects(client.getUser({ userId: 503n }));
      await lineNumber(lines, 3);
      assert.deepEqual(
        lines.map((line) => [line.fields.code, line.level]),
        [
          ["OK", "info"],
          ["NotFound", "error"],
          ["Unavailable", "debug"],
        ],
      );
      assert.equal(asked.length, 17, "levelFor is not asked per call");
    } finally {
      await svc.close();
    }
  });

  it("writes nothing at a level the logger has disabled, and only asks", async () => {
    const capture = captureLogger((level) => level !== "debug");
    const svc = await startLoggedService(createLoggingInterceptor({ logger: capture.logger }));
    try {
      const client = svc.client("grpc");
      await client.getUser({ userId: 1n });
      for await (const _ of client.streamUserActivities({ userId: 1n }));
      await client.batchUpdateUsers(messages([{ userId: 1n }]));
      for await (const _ of client.syncUserStatus(messages([{ userId: 1n }])));
      assert.equal(capture.lines.length, 0);
      assert.deepEqual(capture.asked, ["debug", "debug", "debug", "debug"]);
      await assert.rejects(client.getUser({ userId: 404n }));
      assert.deepEqual(
        capture.lines.map((line) => line.fields.code),
        ["NotFound"],
      );
      assert.deepEqual(capture.asked, ["debug", "debug", "debug", "debug", "info"]);
    } finally {
      await svc.close();
    }
  });

  it("defaults to go-grpc-middleware's levels", async () => {
    const { logger, lines } = captureLogger();
    const failWith = (code: Code) => () => {
      throw new ConnectError("failed", code);
    };
    const interceptor = createLoggingInterceptor({ logger });
    const codes = [
      Code.Canceled,
      Code.Unknown,
      Code.InvalidArgument,
      Code.DeadlineExceeded,
      Code.NotFound,
      Code.AlreadyExists,
      Code.PermissionDenied,
      Code.ResourceExhausted,
      Code.FailedPrecondition,
      Code.Aborted,
      Code.OutOfRange,
      Code.Unimplemented,
      Code.Internal,
      Code.Unavailable,
      Code.DataLoss,
      Code.Unauthenticated,
    ];
    for (const code of codes) {
      const svc = await startTestService([interceptor], { getUser: failWith(code) });
      try {
        await assert.rejects(svc.client("connect").getUser({ userId: 1n }));
      } finally {
        await svc.close();
      }
    }
    assert.deepEqual(Object.fromEntries(lines.map((line) => [line.fields.code, line.level])), {
      Canceled: "info",
      Unknown: "error",
      InvalidArgument: "info",
      DeadlineExceeded: "warn",
      NotFound: "info",
      AlreadyExists: "info",
      PermissionDenied: "info",
      ResourceExhausted: "info",
      FailedPrecondition: "info",
      Aborted: "info",
      OutOfRange: "info",
      Unimplemented: "error",
      Internal: "error",
      Unavailable: "warn",
      DataLoss: "error",
      Unauthenticated: "info",
    });
  });
});

describe("logging interceptor with pino", () => {
  it("takes a pino logger and honours its level", async () => {
    const written: string[] = [];
    const destination = { write: (line: string) => void written.push(line) };
    const logger = pino({ level: "info", base: undefined, timestamp: false }, destination);
    const svc = await startTestService([createLoggingInterceptor({ logger })]);
    try {
      const client = svc.client("grpc-web");
      await client.getUser({ userId: 1n });
      assert.equal(written.length, 0, "OK is logged at debug, below pino's level");
      logger.level = "debug";
      await client.getUser({ userId: 1n });
      assert.equal(written.length, 1);
      const { duration_ms, ...line } = JSON.parse(written[0] as string);
      assert.equal(typeof duration_ms, "number");
      assert.deepEqual(line, {
        level: 20,
        msg: "finished call",
        method: "user.v1.UserService/GetUser",
        protocol: "grpc-web",
        grpc_type: "unary",
        code: "OK",
        peer: "127.0.0.1",
      });
    } finally {
      await svc.close();
    }
  });
});

describe("logging interceptor with a refusal summary", () => {
  /** A flood of refusals at one method, and other calls among them. */
  async function flood(debug: boolean) {
    const { logger, lines } = captureLogger((level) => debug || level !== "debug");
    const summaries: { level: LogLevel; fields: RefusalCounts; message: string }[] = [];
    // An interval no test outlasts: the summary is written by stop(), as at shutdown.
    const refusals = createRefusalSummary({
      intervalMs: 3_600_000,
      emit: (level, fields, message) => summaries.push({ level, fields, message }),
    });
    const svc = await startLoggedService(createLoggingInterceptor({ logger, refusals }));
    try {
      const client = svc.client("grpc");
      for (let i = 0; i < 30; i++) {
        await assert.rejects(client.getUser({ userId: 429n }), /rate limit/);
      }
      await assert.rejects(client.getUser({ userId: 404n }), /not found/);
      await assert.rejects(client.getUser({ userId: 503n }), /unavailable/);
    } finally {
      await svc.close();
    }
    for (let i = 0; i < 400 && lines.length < (debug ? 32 : 3); i++) await sleep(5);
    assert.equal(summaries.length, 0, "nothing is summarised before the interval ends");
    refusals.stop();
    return { lines, summaries };
  }

  it("logs the first refusal of a method and code, and counts the rest into one line", async () => {
    const { lines, summaries } = await flood(false);
    const refused = lines.filter((l) => l.fields.code === "ResourceExhausted");
    assert.equal(refused.length, 1, "one line for 30 refusals");
    assert.equal(refused[0]?.level, "info");
    assert.equal(refused[0]?.fields.error, "rate limit");
    // Failures that are not refusals keep a line each, at their level.
    assert.deepEqual(
      lines.filter((l) => l.fields.code !== "ResourceExhausted").map((l) => l.fields.code),
      ["NotFound", "Unavailable"],
    );
    assert.deepEqual(summaries, [
      {
        level: "info",
        message: "refused calls, summarised",
        fields: {
          method: "user.v1.UserService/GetUser",
          code: "ResourceExhausted",
          count: 29,
          peers: 1,
          first_peers: ["127.0.0.1"],
          interval_ms: 3_600_000,
        },
      },
    ]);
  });

  it("still writes every refusal at debug, for an access log of every call", async () => {
    const { lines, summaries } = await flood(true);
    const refused = lines.filter((l) => l.fields.code === "ResourceExhausted");
    assert.deepEqual(
      refused.map((l) => l.level),
      ["info", ...Array<LogLevel>(29).fill("debug")],
    );
    assert.equal(summaries[0]?.fields.count, 29);
  });

  it("with intervalMs 0 logs every refusal on its own line", async () => {
    const { logger, lines } = captureLogger();
    const refusals = createRefusalSummary({ intervalMs: 0, emit: () => assert.fail("no summary") });
    const svc = await startLoggedService(createLoggingInterceptor({ logger, refusals }));
    try {
      for (let i = 0; i < 5; i++) {
        await assert.rejects(svc.client("connect").getUser({ userId: 429n }), /rate limit/);
      }
    } finally {
      await svc.close();
    }
    await lineNumber(lines, 5);
    assert.deepEqual(
      lines.map((l) => l.level),
      ["info", "info", "info", "info", "info"],
    );
    refusals.stop();
  });

  it("starts a new interval once one has been summarised", async () => {
    const emitted: RefusalCounts[] = [];
    const summary = createRefusalSummary({
      intervalMs: 3_600_000,
      emit: (_level, fields) => emitted.push(fields),
    });
    const admitted = () =>
      [1, 2, 3].map(() => summary.admit("a.v1.S/M", "Unauthenticated", "info", "10.0.0.1"));
    assert.deepEqual(admitted(), [true, false, false]);
    summary.flush();
    assert.deepEqual(admitted(), [true, false, false]);
    assert.equal(summary.admit("a.v1.S/M", "NotFound", "info", "10.0.0.1"), true);
    assert.equal(summary.admit("a.v1.S/M", "NotFound", "info", "10.0.0.1"), true);
    summary.stop();
    assert.deepEqual(
      emitted.map((e) => [e.code, e.count]),
      [
        ["Unauthenticated", 2],
        ["Unauthenticated", 2],
      ],
    );
  });
});
