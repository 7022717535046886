import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createTransport, type Protocol, type TlsOptions } from "@keel/clients";
import {
  type UpdateUserRequestSchema,
  UserService,
  UserStatus,
  UserStatusSchema,
  type UserStatusUpdateSchema,
} from "@keel/gen/user/v1/user_pb";
import { clock } from "./describe.ts";
import { describeError } from "./describe-error.ts";
import { enumName } from "./enum-name.ts";
import { mintLocalToken } from "./local-token.ts";

export interface StreamDemoOptions {
  baseUrl: string;
  protocol: Protocol;
  /** CA and client certificate for an https:// server, when given. */
  tls: TlsOptions | undefined;
  /** Calls are made with this token; when absent, with the demo user's own. */
  token: string | undefined;
  /** The pause between the messages a stream sends, in milliseconds. */
  intervalMs: number;
}

type UserClient = Client<typeof UserService>;
type Print = (kind: string, line: string) => void;

/**
 * Signs up a demo user, then runs the three streaming kinds on it, printing what is sent and what
 * arrives as it happens, each line stamped with the seconds since the start. Resolves to the exit
 * code: 1 when a call fails, saying which and why on stderr.
 */
export async function streamDemo(options: StreamDemoOptions): Promise<number> {
  const users = createClient(
    UserService,
    createTransport({ baseUrl: options.baseUrl, protocol: options.protocol, tls: options.tls }),
  );
  const started = performance.now();
  const print: Print = (kind, line) => {
    const at = ((performance.now() - started) / 1000).toFixed(3).padStart(7);
    process.stdout.write(`[${at}s] ${kind.padEnd(13)} ${line}\n`);
  };
  let phase = "CreateUser";
  try {
    const username = `stream-${randomBytes(4).toString("hex")}`;
    const password = "correct horse battery";
    const { user } = await users.createUser({
      username,
      email: `${username}@example.com`,
      password,
    });
    const userId = user?.userId ?? 0n;
    phase = "Login";
    const token = options.token ?? (await users.login({ username, password })).accessToken;
    const headers = new Headers({ authorization: `Bearer ${token}` });
    print(
      "setup",
      `demo user ${userId} "${username}", calling as ${options.token === undefined ? "that user" : "--token"}`,
    );

    phase = "StreamUserActivities";
    const activities = followActivities(users, userId, headers, print);
    // The history's first activity shows the feed is open (or it failed: then say so now).
    await Promise.race([activities.first, sleep(2000)]);
    activities.throwIfFailed();
    phase = "BatchUpdateUsers";
    await batchUpdate(users, userId, headers, options.intervalMs, print);
    phase = "SyncUserStatus";
    // Setting a status is an administrator's: the setter calls with a local admin token.
    const admin =
      options.token === undefined
        ? new Headers({ authorization: `Bearer ${await mintLocalToken(userId, ["admin"])}` })
        : headers;
    await syncStatus(users, userId, headers, admin, options.intervalMs, print);
    // Let the last activities arrive, then cancel the feed (it never ends by itself).
    await sleep(Math.max(options.intervalMs, 200));
    const received = await activities.stop();
    print("server-stream", `cancelled by the client after ${received} activities`);
    return 0;
  } catch (err) {
    process.stderr.write(`keel stream: ${phase} failed: ${describeError(err)}\n`);
    return 1;
  }
}

/** Server streaming: prints each activity as it arrives, until stopped. */
function followActivities(users: UserClient, userId: bigint, headers: Headers, print: Print) {
  const abort = new AbortController();
  let received = 0;
  let failure: unknown;
  let markFirst = () => {};
  const first = new Promise<void>((resolve) => {
    markFirst = resolve;
  });
  print("server-stream", `→ StreamUserActivities(user ${userId}): history, then live`);
  const done = (async () => {
    try {
      for await (const activity of users.streamUserActivities(
        { userId },
        { headers, signal: abort.signal, timeoutMs: 0 },
      )) {
        received++;
        const details = Object.entries(activity.details)
          .map(([key, value]) => `${key}=${value}`)
          .join(" ");
        print(
          "server-stream",
          `← #${activity.activityId} ${activity.action} ${details} (at ${clock(activity.timestamp)})`,
        );
        markFirst();
      }
    } catch (err) {
      if (!(abort.signal.aborted && ConnectError.from(err).code === Code.Canceled)) failure = err;
    } finally {
      markFirst();
    }
  })();
  return {
    first,
    throwIfFailed() {
      if (failure !== undefined) throw failure;
    },
    async stop(): Promise<number> {
      abort.abort();
      await done;
      if (failure !== undefined) throw failure;
      return received;
    },
  };
}

/** Client streaming: three updates, each sent after a pause, then the server's one answer. */
async function batchUpdate(
  users: UserClient,
  userId: bigint,
  headers: Headers,
  interval: number,
  print: Print,
): Promise<void> {
  const updates: MessageInitShape<typeof UpdateUserRequestSchema>[] = [
    { userId, user: { tags: ["demo"] }, updateMask: { paths: ["tags"] } },
    { userId, user: { metadata: { color: "teal" } }, updateMask: { paths: ["metadata"] } },
    { userId, user: { tags: ["demo", "streamed"] }, updateMask: { paths: ["tags"] } },
  ];
  print("client-stream", `→ BatchUpdateUsers: ${updates.length} updates, one every ${interval} ms`);
  async function* send() {
    for (const [i, update] of updates.entries()) {
      if (i > 0) await sleep(interval);
      const { tags = [], metadata = {} } = update.user ?? {};
      const what = update.updateMask?.paths?.includes("tags")
        ? `tags=[${tags.join(",")}]`
        : `metadata=${JSON.stringify(metadata)}`;
      print("client-stream", `→ update #${i + 1}: ${what}`);
      yield update;
    }
    print("client-stream", "→ (closes its side)");
  }
  const result = await users.batchUpdateUsers(send(), { headers });
  const errors = result.errors.length === 0 ? "no errors" : result.errors.join("; ");
  print("client-stream", `← updated ${result.updatedCount}, ${errors}`);
}

/**
 * Bidi streaming: a follower and a setter stream on one user; the follower sees each change. The
 * setter is an administrator (`adminHeaders`): users do not set their own status.
 */
async function syncStatus(
  users: UserClient,
  userId: bigint,
  headers: Headers,
  adminHeaders: Headers,
  interval: number,
  print: Print,
): Promise<void> {
  const changes = [UserStatus.INACTIVE, UserStatus.SUSPENDED, UserStatus.ACTIVE];
  const status = (s: UserStatus) => enumName(UserStatusSchema, s);
  // The follower closes its side once it has seen every change; until then it stays open.
  let seenAll = () => {};
  const allSeen = new Promise<void>((resolve) => {
    seenAll = resolve;
  });
  async function* follow(): AsyncIterable<MessageInitShape<typeof UserStatusUpdateSchema>> {
    print("bidi", `follower → follow user ${userId}`);
    yield { userId };
    await allSeen;
    print("bidi", "follower → (closes its side)");
  }
  async function* set(): AsyncIterable<MessageInitShape<typeof UserStatusUpdateSchema>> {
    for (const [i, next] of changes.entries()) {
      if (i > 0) await sleep(interval);
      print("bidi", `setter   → ${status(next)}`);
      yield { userId, status: next };
    }
    print("bidi", "setter   → (closes its side)");
  }
  // Stops the follower when the setter fails; the deadline stops both if the server stalls.
  const abort = new AbortController();
  const call = { headers, signal: abort.signal, timeoutMs: 30_000 + interval * changes.length };
  let seen = 0;
  let setter: Promise<void> | undefined;
  print("bidi", "→ SyncUserStatus ×2: a follower and a setter");
  try {
    for await (const update of users.syncUserStatus(follow(), call)) {
      const label = seen === 0 ? "(current)" : "(live)";
      print("bidi", `follower ← user ${update.userId} is ${status(update.status)} ${label}`);
      // The setter starts once the follow is in place, so that no change is missed.
      if (seen++ === 0) {
        setter = drain(users.syncUserStatus(set(), { ...call, headers: adminHeaders }));
        // The follower waits for changes that will not come if the setter fails: stop it.
        setter.catch(() => abort.abort());
      }
      if (seen > changes.length) seenAll();
    }
    await setter;
  } catch (err) {
    // The setter's error says more than the follower's cancellation.
    await setter;
    throw err;
  }
  print("bidi", `follower ← (stream ended after ${seen} updates)`);
}

/** Reads a stream to its end; the setter gets no echo of its own changes. */
async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream);
}
